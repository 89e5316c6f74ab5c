"""Hinge loss (Lim & Ye, "Geometric GAN", arXiv:1705.02894; Miyato et al., "Spectral
Normalization for GANs", ICLR 2018, eq. 16-17).

L_D = mean(relu(1 - l_r)) + mean(relu(1 + l_f)),  L_G = -mean(l_f).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ganlab.losses.base import GANLoss


class HingeLoss(GANLoss):
    def __init__(
        self, real_smoothing: float = 0.0, fake_smoothing: float = 0.0, flip_prob: float = 0.0, **kwargs
    ):
        super().__init__(real_smoothing, fake_smoothing, flip_prob, **kwargs)
        if self.noise.active:
            raise ValueError(
                "loss=hinge has no labels to smooth or flip: remove loss.real_smoothing, "
                "loss.fake_smoothing and loss.flip_prob, or use loss=bce / loss=rasgan"
            )

    def d_objective(self, real_logits, fake_logits, real_t, fake_t) -> Tensor:
        return F.relu(1.0 - real_logits.float()).mean() + F.relu(1.0 + fake_logits.float()).mean()

    def g_objective(self, real_logits, fake_logits) -> Tensor:
        return -fake_logits.float().mean()
