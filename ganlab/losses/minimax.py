"""The original minimax GAN (Goodfellow et al., "Generative Adversarial Nets", NIPS 2014).

D maximises log D(x) + log(1 - D(G(z))), i.e. minimises BCE(l_r, 1) + BCE(l_f, 0).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ganlab.losses.base import GANLoss, bce


class MinimaxLoss(GANLoss):
    """The saturating minimax game: G minimises log(1 - D(G(z))) = -softplus(l_f).

    Its gradient vanishes when D confidently rejects fakes (early training); kept for
    comparisons, prefer ``NonSaturatingLoss``.
    """

    def d_objective(self, real_logits, fake_logits, real_t, fake_t) -> Tensor:
        return bce(real_logits, real_t) + bce(fake_logits, fake_t)

    def g_objective(self, real_logits, fake_logits) -> Tensor:
        # log(1 - sigmoid(l)) = -softplus(l); minimising it pushes l_f up.
        return -F.softplus(fake_logits.float()).mean()
