"""Relativistic GANs (Jolicoeur-Martineau, "The relativistic discriminator: a key element
missing from standard GAN", ICLR 2019, arXiv:1807.00734).

D estimates the probability that real data is *more realistic* than fake data. With logits
C(x): RSGAN uses C(x_r) - C(x_f) on paired samples; RaSGAN compares each sample with the mean
logit of the other batch. G's objective is symmetric, so G also gets gradient through the
real side's term (through the mean of fake logits in RaSGAN).
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
