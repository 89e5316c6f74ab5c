"""The non-saturating BCE GAN, the DCGAN default (Goodfellow et al., "Generative Adversarial
Nets", NIPS 2014, section 3): D as in the minimax game, BCE(l_r, 1) + BCE(l_f, 0); G minimises
-log D(G(z)) = BCE(l_f, 1) = softplus(-l_f) instead of log(1 - D(G(z))), whose gradient vanishes
while D confidently rejects the fakes.
"""

from __future__ import annotations

from torch import Tensor

from ganlab.losses.base import bce
from ganlab.losses.minimax import MinimaxLoss


class BCELoss(MinimaxLoss):
    """``loss=bce``: the minimax D objective with the non-saturating G objective."""

    def g_objective(self, real_logits, fake_logits) -> Tensor:
        return bce(fake_logits, 1.0)


NonSaturatingLoss = BCELoss  # the name in earlier configurations
