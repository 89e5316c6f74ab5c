"""Relativistic average standard GAN, RaSGAN (Jolicoeur-Martineau, "The relativistic
discriminator: a key element missing from standard GAN", ICLR 2019, arXiv:1807.00734, sec. 4.2):
each sample's logit is compared with the mean logit of the other batch (``rsgan.py`` compares
paired samples), so G gets gradient through the real side's term too.
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
