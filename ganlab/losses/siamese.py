"""Siamese similarity loss, for ``SiameseDiscriminator`` (see ganlab/models/siamese.py).

D scores pairs: (x, x') two real images should be "similar" (target 1 - e1), (x, G(z)) a real
and a fake "dissimilar" (target e2). D thus maximises the real/fake dissimilarity; G minimises
it by pushing D(x, G(z)) towards "similar" (non-saturating form, target 1).
The real pairs are built by pairing each real image with its neighbour in the batch
(``real.roll(1, 0)``), so no extra data is drawn.
"""

from __future__ import annotations

from torch import Tensor

from ganlab.losses.base import GANLoss, Stats, bce, logit_stats
from ganlab.losses.step import Step


class SiameseLoss(GANLoss):
    pairwise = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.r1_gamma > 0:
            raise ValueError("loss=siamese does not support the R1 penalty; set loss.r1_gamma=0")
        if self.acgan_weight > 0:
            raise ValueError("loss=siamese has no class term; set loss.acgan_weight=0")
        if self.mode_seeking > 0:
            raise ValueError("loss=siamese does not support the mode-seeking term; set loss.mode_seeking=0")

    def lazy_terms(self):
        return ()  # R1 is refused above: a pair D has no single-image gradient to penalise

    def d_loss(self, D, step: Step) -> tuple[Tensor, Stats]:
        real = step.real
        same = D(real, real.roll(1, 0))  # (B,) logits of "similar" for real/real pairs
        diff = D(real, step.fake)  # (B,) logits of "similar" for real/fake pairs
        real_t, fake_t = self.noise.targets(same.shape[0], same)
        loss = bce(same, real_t) + bce(diff, fake_t)
        # d_real: mean similarity of real pairs; d_fake: of real/fake pairs.
        return loss, logit_stats(same, diff)

    def g_loss(self, D, step: Step) -> tuple[Tensor, Stats]:
        return bce(D(step.real, step.fake), 1.0), {}
