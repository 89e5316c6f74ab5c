"""Transforms applied to every image D sees, real and fake alike, in both phases.

The training module calls D as ``D(aug(x))``; the augmentations are differentiable, so G's
gradient flows through them (the point of DiffAugment). All run on the batch's device.

Every augmentation is an ``Augment``: an ``nn.Module`` with two explicit hooks the training
module calls, ``on_iteration(images_seen)`` before each iteration (schedules) and ``capturable``
(whether it can be replayed inside a CUDA graph: nothing decided on the host per iteration).
``AugmentPipeline`` applies a list of them in order.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.errors import UsageError


class Augment(nn.Module):
    """Base of D's augmentations: ``forward(x)`` on images (B, C, H, W) in [-1, 1]."""

    #: False when the augmentation decides on the host during an iteration (a CUDA graph replay
    #: would freeze that decision).
    capturable = True

    def on_iteration(self, images_seen: int) -> None:
        """Before each iteration: ``images_seen`` real images (all ranks) were shown to D so far."""


class AugmentPipeline(nn.ModuleList):
    """The augmentations of ``model.d_augment``, applied in order; empty: the identity."""

    def __init__(self, augments: Iterable[nn.Module] = ()) -> None:
        augments = list(augments)
        for a in augments:
            if not isinstance(a, Augment):
                raise UsageError(
                    f"{type(a).__name__} is not a ganlab.augment.Augment (model.d_augment): derive it from "
                    "ganlab.augment.Augment, whose on_iteration hook the training module calls"
                )
        super().__init__(augments)

    def forward(self, x: Tensor) -> Tensor:
        for aug in self:
            x = aug(x)
        return x

    def on_iteration(self, images_seen: int) -> None:
        for aug in self:
            aug.on_iteration(images_seen)

    @property
    def capturable(self) -> bool:
        return all(aug.capturable for aug in self)


class DiffAugment(Augment):
    """Differentiable Augmentation (Zhao et al., "Differentiable Augmentation for Data-Efficient
    GAN Training", NeurIPS 2020; follows their reference DiffAugment_pytorch.py, MIT licence).

    ``policy``: comma-separated subset of ``color`` (brightness, saturation, contrast),
    ``translation`` (shift by up to ``translation_ratio`` of the side, zero padded) and
    ``cutout`` (a zeroed square of ``cutout_ratio`` of the side). Images (B, C, H, W) in [-1, 1].
    """

    def __init__(
        self,
        policy: str = "color,translation,cutout",
        translation_ratio: float = 0.125,
        cutout_ratio: float = 0.5,
    ) -> None:
        super().__init__()
        self.policy = [p.strip() for p in policy.split(",") if p.strip()]
        unknown = set(self.policy) - {"color", "translation", "cutout"}
        if unknown:
            raise ValueError(f"unknown DiffAugment policy {sorted(unknown)}; use color, translation, cutout")
        self.translation_ratio, self.cutout_ratio = translation_ratio, cutout_ratio

    def forward(self, x: Tensor) -> Tensor:
        for p in self.policy:
            x = getattr(self, p)(x)
        return x

    @staticmethod
    def color(x: Tensor) -> Tensor:
        b = x.shape[0]
        x = x + (torch.rand(b, 1, 1, 1, dtype=x.dtype, device=x.device) - 0.5)  # brightness
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (torch.rand(b, 1, 1, 1, dtype=x.dtype, device=x.device) * 2) + mean  # saturation
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) * (torch.rand(b, 1, 1, 1, dtype=x.dtype, device=x.device) + 0.5) + mean  # contrast

    def translation(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        sx, sy = int(h * self.translation_ratio + 0.5), int(w * self.translation_ratio + 0.5)
        tx = torch.randint(-sx, sx + 1, (b, 1, 1), device=x.device)
        ty = torch.randint(-sy, sy + 1, (b, 1, 1), device=x.device)
        gb, gx, gy = torch.meshgrid(
            torch.arange(b, device=x.device),
            torch.arange(h, device=x.device),
            torch.arange(w, device=x.device),
            indexing="ij",
        )
        gx = (gx + tx + 1).clamp(0, h + 1)
        gy = (gy + ty + 1).clamp(0, w + 1)
        padded = F.pad(x, [1, 1, 1, 1])  # the one-pixel zero border is what shifted-in pixels read
        return padded.permute(0, 2, 3, 1)[gb, gx, gy].permute(0, 3, 1, 2)

    def cutout(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        ch, cw = int(h * self.cutout_ratio + 0.5), int(w * self.cutout_ratio + 0.5)
        ox = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device)
        oy = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device)
        gb, gx, gy = torch.meshgrid(
            torch.arange(b, device=x.device),
            torch.arange(ch, device=x.device),
            torch.arange(cw, device=x.device),
            indexing="ij",
        )
        gx = (gx + ox - ch // 2).clamp(0, h - 1)
        gy = (gy + oy - cw // 2).clamp(0, w - 1)
        mask = torch.ones(b, h, w, dtype=x.dtype, device=x.device)
        mask[gb, gx, gy] = 0
        return x * mask.unsqueeze(1)


class InstanceNoise(Augment):
    """Gaussian instance noise (Sønderby et al., "Amortised MAP Inference for Image
    Super-resolution", ICLR 2017, sec. 3.2; Arjovsky & Bottou 2017): x + N(0, sigma^2), with sigma
    annealed linearly from ``sigma`` to 0 over ``anneal_kimg`` thousand images (None: constant).
    It makes the real and fake distributions overlap, so D cannot separate them perfectly."""

    def __init__(self, sigma: float = 0.1, anneal_kimg: float | None = None) -> None:
        super().__init__()
        self.sigma, self.anneal_kimg = sigma, anneal_kimg
        self.images_seen = 0
        self.capturable = not anneal_kimg  # the annealed sigma changes on the host

    def on_iteration(self, images_seen: int) -> None:
        self.images_seen = images_seen

    def current_sigma(self) -> float:
        if not self.anneal_kimg:
            return self.sigma
        return self.sigma * max(0.0, 1.0 - self.images_seen / (self.anneal_kimg * 1000))

    def forward(self, x: Tensor) -> Tensor:
        s = self.current_sigma()
        return x + s * torch.randn_like(x) if s > 0 else x
