"""The truncation trick, with the BatchNorm statistics it needs (Brock et al., "Large Scale GAN
Training for High Fidelity Natural Image Synthesis", ICLR 2019, sections 3.1 and 4.2).

Truncating z (redrawing every entry beyond a threshold) trades variety for fidelity. But
truncated latents are shorter than the prior's (at 0.7 about 40% of the norm), and a generator
with BatchNorm normalises in eval mode with running statistics gathered on full-size z: the
activations come out shrunk, and so do the images (dim, washed out). BigGAN's remedy, "standing
statistics": recompute every BatchNorm's statistics from a few batches of the truncated latents
themselves before sampling. ``standing_statistics`` does that on a copy of G.

A style-based G (StyleGAN2) truncates in w instead, toward the mean w it tracked while training
(Karras et al., "A Style-Based Generator Architecture for GANs", CVPR 2019, sec. 3.1;
``truncation_psi``, optionally only the first ``truncation_cutoff`` ws): z is drawn whole and
there is no BatchNorm to restore. That mean is over every class: a conditional G truncated
toward it drifts toward the average class (fewer images of the class asked for), so
``center="class"`` pulls each sample toward its own class's mean w instead (``class_centers``;
the centre the conditional StyleGAN-XL truncates toward, Sauer et al., SIGGRAPH 2022, sec. 3).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor, nn

from ganlab.utils.errors import UsageError


def truncated_latent(sample: Callable[..., Tensor], n: int, threshold: float | None, generator) -> Tensor:
    """(n, nz) latents from the prior; with ``threshold`` every entry whose magnitude exceeds it
    is drawn again until none does: fidelity up, variety down as the threshold falls."""
    z = sample(n, generator=generator)
    if threshold is None:
        return z
    for _ in range(10_000):
        out = z.abs() > threshold
        if not out.any():
            return z
        z = torch.where(out, sample(n, generator=generator), z)
    raise UsageError(
        f"truncation={threshold} leaves almost nothing of the prior (truncation): use a larger threshold"
    )


@torch.no_grad()
def standing_statistics(
    G: nn.Module,
    latents: Callable[[int], Tensor],
    labels: Callable[[int], Tensor | None] | None = None,
    batches: int = 16,
    batch_size: int = 256,
) -> nn.Module:
    """A copy of G (in eval mode) whose BatchNorm running statistics are the averages over
    ``batches`` batches of ``latents(batch_size)`` (and ``labels(batch_size)`` for a conditional
    G) run in training mode; G itself is left as it is. A G without BatchNorm is returned as a copy."""
    G = copy.deepcopy(G)
    norms = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return G.eval()
    device = next(G.parameters()).device
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches below
    G.train()
    for _ in range(batches):
        y = labels(batch_size) if labels is not None else None
        z = latents(batch_size).to(device)
        G(z) if y is None else G(z, y.to(device))
    return G.eval()


@torch.no_grad()
def class_centers(G: nn.Module, n: int = 2000, seed: int = 0) -> Tensor:
    """(num_classes, w_dim): each class's mean w over ``n`` latents of a style-based G."""
    device = next(G.parameters()).device
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    rows = []
    for k in range(G.num_classes):
        ws = G.mapping(z, torch.full((n,), k, device=device), skip_w_avg_update=True)  # (n, num_ws, w_dim)
        rows.append(ws[:, 0].float().mean(dim=0))  # a sample's ws are all the same before truncation
    return torch.stack(rows)


CENTERS = ("w_avg", "class")  # what a style-based G's truncation pulls toward


def truncate(
    gen,
    threshold: float | None,
    seed: int,
    standing: bool = True,
    batches: int = 16,
    cutoff: int | None = None,
    center: str = "w_avg",
) -> Callable:
    """Prepare a ``ganlab.checkpoint.generator.LoadedGenerator`` for sampling at ``threshold``: with
    ``standing``, its G gets standing statistics from truncated latents of a generator seeded
    ``seed + 1`` (the samples' own latents stay those of ``seed``). A style-based G is given
    ``truncation_psi=threshold`` (and ``truncation_cutoff``) for every call instead. Returns the
    latent sampler ``sample(n, generator=...)`` to draw the samples with."""
    if center not in CENTERS:
        raise UsageError(f"truncation_center must be one of {CENTERS}, got {center!r} (truncation_center)")
    if getattr(gen.G, "style_based", False):
        if threshold is not None:
            gen.options.update(truncation_psi=threshold, truncation_cutoff=cutoff)
            if center == "class" and gen.num_classes:
                gen.class_centers = class_centers(gen.G, seed=seed + 1)
        return gen.sample_z
    if cutoff is not None:
        raise UsageError("truncation_cutoff is for a style-based generator (model=stylegan2): leave it out")

    def sample(n: int, generator=None) -> Tensor:
        return truncated_latent(gen.sample_z, n, threshold, generator)

    if threshold is not None and standing:
        g = torch.Generator().manual_seed(seed + 1)
        gen.G = standing_statistics(gen.G, lambda b: sample(b, generator=g), lambda b: gen.labels(b), batches)
    return sample
