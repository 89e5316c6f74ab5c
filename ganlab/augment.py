"""Transforms applied to every image D sees, real and fake alike, in both phases.

The training module calls D as ``D(aug(x))``; the augmentations are differentiable, so G's
gradient flows through them (the point of DiffAugment). All run on the batch's device.

Every augmentation is an ``Augment``: an ``nn.Module`` with explicit hooks the training module
calls: ``on_iteration(progress)`` before each iteration (schedules), ``observe(stats)`` after it
(ADA's overfitting heuristic) and ``stats()`` (values to log); ``capturable`` says whether it can
be replayed inside a CUDA graph (nothing decided on the host per iteration).
``AugmentPipeline`` applies a list of them in order.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.utils.errors import UsageError


class Augment(nn.Module):
    """Base of D's augmentations: ``forward(x)`` on images (B, C, H, W) in [-1, 1]."""

    #: False when the augmentation decides on the host during an iteration (a CUDA graph replay
    #: would freeze that decision).
    capturable = True

    def on_iteration(self, progress) -> None:
        """Before each iteration (``progress``: a ``ganlab.training.counters.TrainingProgress``:
        iterations done, real images shown to D so far, all ranks): schedules."""

    def observe(self, stats: dict[str, Tensor], progress) -> None:
        """After each iteration: its statistics (0-d device tensors: ``d_acc_real``, ...) and the
        progress counted with it."""

    def stats(self) -> dict[str, Tensor]:
        """0-d device tensors to log with the iteration's statistics (``train/<name>``)."""
        return {}


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

    def on_iteration(self, progress) -> None:
        for aug in self:
            aug.on_iteration(progress)

    def observe(self, stats: dict[str, Tensor], progress) -> None:
        for aug in self:
            aug.observe(stats, progress)

    def stats(self) -> dict[str, Tensor]:
        return {k: v for aug in self for k, v in aug.stats().items()}

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

    def on_iteration(self, progress) -> None:
        self.images_seen = progress.images_seen

    def current_sigma(self) -> float:
        if not self.anneal_kimg:
            return self.sigma
        return self.sigma * max(0.0, 1.0 - self.images_seen / (self.anneal_kimg * 1000))

    def forward(self, x: Tensor) -> Tensor:
        s = self.current_sigma()
        return x + s * torch.randn_like(x) if s > 0 else x


class ADA(Augment):
    """Adaptive discriminator augmentation (Karras et al., "Training Generative Adversarial
    Networks with Limited Data", NeurIPS 2020): every image D sees, real or generated, goes
    through x-flips, 90-degree rotations, integer translations, isotropic scaling and colour
    changes (brightness, contrast, saturation), each applied to an image with probability ``p``;
    all differentiable, so G learns through them, and all on the device (``p`` is a device
    scalar: no host read, capturable in a CUDA graph).

    ``p`` follows the overfitting heuristic r_t = E[sign(D(x_real))] = 2 P(D(x_real) > 0) - 1,
    accumulated over ``interval`` iterations from D's accuracy on real images (``observe``): it
    rises while r_t > ``target`` (D too sure of the reals) and falls otherwise, by
    ``images / (speed_kimg * 1000)`` per update, so it can go from 0 to 1 in ``speed_kimg``
    thousand images (500 in the paper; smaller for short runs). Under DDP r_t is averaged over
    ranks. The update runs after an iteration, outside a CUDA graph's replay. ``p`` and the
    accumulators are buffers: checkpointed with the module (exact resume),
    and ``p`` is logged as ``train/ada_p``."""

    def __init__(
        self,
        target: float = 0.6,
        interval: int = 4,
        speed_kimg: float = 500.0,
        p: float = 0.0,
        translate: float = 0.125,
        scale_std: float = 0.2,
        brightness_std: float = 0.2,
        contrast_std: float = 0.5,
        saturation_std: float = 1.0,
    ) -> None:
        super().__init__()
        if not 0 <= target <= 1 or interval < 1 or speed_kimg <= 0 or not 0 <= p <= 1:
            raise UsageError(
                "ADA needs 0 <= target <= 1, interval >= 1, speed_kimg > 0 and 0 <= p <= 1 "
                "(model.d_augment): e.g. {_target_: ganlab.augment.ADA, target: 0.6, speed_kimg: 100}"
            )
        self.target, self.interval, self.speed_kimg = target, interval, speed_kimg
        self.translate, self.scale_std = translate, scale_std
        self.brightness_std, self.contrast_std, self.saturation_std = (
            brightness_std,
            contrast_std,
            saturation_std,
        )
        self.register_buffer("p", torch.tensor(float(p)))
        self.register_buffer("sign_sum", torch.zeros(()))  # sum of E[sign(D(real))] since the last update
        self.register_buffer("sign_count", torch.zeros(()))

    # -- p -----------------------------------------------------------------------------------------
    def observe(self, stats: dict[str, Tensor], progress) -> None:
        if "d_acc_real" in stats:  # iterations with a D update
            self.sign_sum.add_(2 * stats["d_acc_real"].float() - 1)
            self.sign_count.add_(1)
        if progress.iterations % self.interval:
            return
        total, count = self.sign_sum, self.sign_count
        if dist.is_available() and dist.is_initialized():
            both = torch.stack([total, count])
            dist.all_reduce(both)  # every rank adapts p alike: r_t over all ranks
            total, count = both
        r_t = total / count.clamp(min=1)
        step = torch.sign(r_t - self.target) * (count > 0) * (progress.last_images * self.interval)
        self.p.copy_((self.p + step / (self.speed_kimg * 1000)).clamp(0, 1))
        self.sign_sum.zero_()
        self.sign_count.zero_()

    def stats(self) -> dict[str, Tensor]:
        return {"ada_p": self.p.detach().clone()}

    # -- the pipeline ------------------------------------------------------------------------------
    def _chosen(self, x: Tensor) -> Tensor:
        """(B,) bool: which images get the next transformation (each with probability p)."""
        return torch.rand(x.shape[0], device=x.device) < self.p

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        mask = self._chosen(x)[:, None, None, None]
        x = torch.where(mask, x.flip(3), x)  # x-flip
        if h == w:  # 90-degree rotations (square images): one of 4, chosen images only
            k = torch.randint(0, 4, (b,), device=x.device) * self._chosen(x)
            turns = torch.stack([torch.rot90(x, r, dims=(2, 3)) for r in range(4)])  # (4, B, C, H, W)
            x = turns[k, torch.arange(b, device=x.device)]
        # integer translation by up to ``translate`` of the side, reflected at the borders
        # (no tensor built from host values: a CUDA graph capture could not copy it)
        chosen = self._chosen(x)
        dy = ((torch.rand(b, device=x.device) * 2 - 1) * (self.translate * h)).round().long() * chosen
        dx = ((torch.rand(b, device=x.device) * 2 - 1) * (self.translate * w)).round().long() * chosen
        shift = torch.stack([dy, dx])
        rows = _reflect(torch.arange(h, device=x.device)[None] - shift[0][:, None], h)  # (B, H)
        cols = _reflect(torch.arange(w, device=x.device)[None] - shift[1][:, None], w)  # (B, W)
        bi = torch.arange(b, device=x.device)[:, None, None, None]
        ci = torch.arange(c, device=x.device)[None, :, None, None]
        x = x[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]
        # isotropic scaling by 2^N(0, scale_std) about the centre, bilinear, reflected
        s = torch.exp2(torch.randn(b, device=x.device) * self.scale_std * self._chosen(x))
        x = _scale_bilinear(x, s)
        # colour: brightness, contrast, then saturation (colour images)
        x = (
            x
            + torch.randn(b, 1, 1, 1, device=x.device)
            * self.brightness_std
            * self._chosen(x)[:, None, None, None]
        )
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        gain = torch.exp2(
            torch.randn(b, 1, 1, 1, device=x.device)
            * self.contrast_std
            * self._chosen(x)[:, None, None, None]
        )
        x = (x - mean) * gain + mean
        if c == 3:
            luma = x.mean(dim=1, keepdim=True)
            sat = torch.exp2(
                torch.randn(b, 1, 1, 1, device=x.device)
                * self.saturation_std
                * self._chosen(x)[:, None, None, None]
            )
            x = (x - luma) * sat + luma
        return x


def _scale_bilinear(x: Tensor, s: Tensor) -> Tensor:
    """(B, C, H, W) images each scaled by ``s`` (B,) about its centre: what ``F.grid_sample``
    (bilinear, ``padding_mode="reflection"``, ``align_corners=False``) gives on the grid of
    ``affine_grid(diag(1/s, 1/s))``, up to float rounding.

    Built from ``gather`` because R1 differentiates D's gradient with respect to the reals through
    this augmentation: CUDA's ``grid_sampler_2d_backward`` has no derivative ("derivative for
    aten::grid_sampler_2d_backward is not implemented", seen on an H200 with torch 2.11; the CPU's
    kernel has one, so CPU runs never showed it). An isotropic scaling moves rows and columns
    independently, so the bilinear sample is a linear interpolation along H, then along W."""
    for dim in (2, 3):
        n = x.shape[dim]
        # output pixel j's centre at u = (2j + 1)/n - 1 in [-1, 1] reads the input at u / s, in
        # pixel units ((u / s + 1) n - 1) / 2 (align_corners=False: -0.5 and n - 0.5 are the borders)
        u = (2 * torch.arange(n, device=x.device, dtype=torch.float32) + 1) / n - 1
        pos = ((u[None] / s[:, None] + 1) * n - 1) / 2  # (B, n)
        pos = _reflect_continuous(pos, n).clamp(0, n - 1)
        i0 = pos.floor().long()
        frac = (pos - i0).to(x.dtype)
        i1 = (i0 + 1).clamp(max=n - 1)  # frac is 0 where i0 is the last pixel
        shape = [x.shape[0], 1, 1, 1]
        shape[dim] = n
        i0, i1, frac = i0.view(shape), i1.view(shape), frac.view(shape)
        a, c = x.gather(dim, i0.expand(x.shape)), x.gather(dim, i1.expand(x.shape))
        x = a + (c - a) * frac
    return x


def _reflect_continuous(pos: Tensor, n: int) -> Tensor:
    """Pixel coordinates folded into [-0.5, n - 0.5] by mirrors at those borders (grid_sample's
    reflection padding with align_corners=False)."""
    t = (pos + 0.5).abs()
    flips = torch.div(t, n, rounding_mode="floor")
    extra = t - flips * n
    return torch.where(flips.remainder(2) == 0, extra, n - extra) - 0.5


def _reflect(index: Tensor, n: int) -> Tensor:
    """Indices folded back into [0, n) as a mirror does (reflection without repeating the edge)."""
    period = 2 * (n - 1)
    index = index.remainder(period)
    return torch.where(index >= n, period - index, index)
