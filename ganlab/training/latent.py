"""The latent prior, and the fixed latents of the sample grids."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

PRIORS = ("normal", "uniform")


def sample_latent(
    n: int, nz: int, latent: str, generator: torch.Generator | None = None, device=None
) -> Tensor:
    """(n, nz) from the prior: N(0, I) for ``normal``, U(-1, 1) for ``uniform`` (DCGAN paper)."""
    if latent == "normal":
        return torch.randn(n, nz, generator=generator, device=device)
    return torch.rand(n, nz, generator=generator, device=device) * 2 - 1


@dataclass(frozen=True)
class LatentPrior:
    """z's distribution: ``nz`` dimensions, ``kind`` normal or uniform (``PRIORS``; checked before
    training, ``ganlab.run.checks``)."""

    nz: int = 100
    kind: str = "normal"

    def sample(self, n: int, generator: torch.Generator | None = None, device=None) -> Tensor:
        """A latent batch (n, nz)."""
        return sample_latent(n, self.nz, self.kind, generator, device)


@dataclass(frozen=True)
class FixedNoise:
    """The latents of the sample grids: ``n`` of them from a generator seeded ``seed``, drawn
    once (checkpointed with the module, so a resumed run keeps drawing the same grid).
    Conditional: one row per class, the same latents in every row."""

    n: int = 64
    seed: int = 0

    def draw(self, prior: LatentPrior, num_classes: int = 0) -> tuple[Tensor, Tensor | None, int]:
        """(z (N, nz), labels (N,) or None, grid columns)."""
        z = prior.sample(self.n, generator=torch.Generator().manual_seed(self.seed))
        if not num_classes:
            return z, None, int(math.sqrt(self.n))
        columns = max(1, self.n // num_classes)
        z = z[:columns].repeat(num_classes, 1)  # (classes * columns, nz)
        y = torch.arange(num_classes).repeat_interleave(columns)  # (classes * columns,)
        return z, y, columns
