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


class RaSGANLoss(GANLoss):
    """Relativistic average standard GAN:
    L_D = BCE(l_r - mean(l_f), 1) + BCE(l_f - mean(l_r), 0)
    L_G = BCE(l_f - mean(l_r), 1) + BCE(l_r - mean(l_f), 0)
    (means over the batch)."""

    g_needs_real = True

    def d_objective(self, real_logits, fake_logits, real_t, fake_t) -> Tensor:
        return bce(real_logits - fake_logits.mean(), real_t) + bce(fake_logits - real_logits.mean(), fake_t)

    def g_objective(self, real_logits, fake_logits) -> Tensor:
        return bce(fake_logits - real_logits.mean(), 1.0) + bce(real_logits - fake_logits.mean(), 0.0)
