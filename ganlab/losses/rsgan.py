"""Relativistic standard GAN, RSGAN (Jolicoeur-Martineau, "The relativistic discriminator: a key
element missing from standard GAN", ICLR 2019, arXiv:1807.00734): D estimates the probability that
real data is *more realistic* than fake data, on the logit difference C(x_r) - C(x_f) of paired
samples; G's objective is the mirror image, so G also gets gradient through the real side.
"""

from __future__ import annotations

from torch import Tensor

from ganlab.losses.base import GANLoss, bce


class RSGANLoss(GANLoss):
    """Relativistic standard GAN: L_D = BCE(l_r - l_f, 1), L_G = BCE(l_f - l_r, 1)."""

    g_needs_real = True

    def d_objective(self, real_logits, fake_logits, real_t, fake_t) -> Tensor:
        # Flipped or smoothed samples use target real_t on the relativistic logit.
        return bce(real_logits - fake_logits, real_t)

    def g_objective(self, real_logits, fake_logits) -> Tensor:
        return bce(fake_logits - real_logits, 1.0)
