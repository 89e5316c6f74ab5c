"""Least-squares GAN (Mao et al., "Least Squares Generative Adversarial Networks", ICCV 2017,
eq. 2 with the 0-1 coding a = 0, b = c = 1).

L_D = 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2],  L_G = 1/2 E[(D(G(z)) - 1)^2].
D's output is used raw (no sigmoid); label smoothing moves the targets b (real) and a (fake).
"""

from __future__ import annotations

from torch import Tensor

from ganlab.losses.base import GANLoss


class LSGANLoss(GANLoss):
    def d_objective(self, real_logits, fake_logits, real_t, fake_t) -> Tensor:
        return (
            0.5 * ((real_logits.float() - real_t) ** 2).mean()
            + 0.5 * ((fake_logits.float() - fake_t) ** 2).mean()
        )

    def g_objective(self, real_logits, fake_logits) -> Tensor:
        return 0.5 * ((fake_logits.float() - 1.0) ** 2).mean()


LeastSquaresLoss = LSGANLoss  # the name in earlier configurations
