"""What the training module knows of a network: the attributes below, set by each model.

A new model derives from these (one file in ``ganlab/models/`` plus one yaml in ``conf/model/``):
``ganlab.run.checks.check_model`` reads the attributes, at build time, to check that G, D, the
loss and the data agree (latent size, classes, pair discriminator, ACGAN head)."""

from __future__ import annotations

from torch import Tensor, nn


class Generator(nn.Module):
    """G(z) -> images (B, C, H, W) in [-1, 1]; G(z, y) with class labels y (B,) when conditional."""

    nz: int = 100  # latent size
    image_size: int = 64
    channels: int = 3
    num_classes: int = 0  # > 0: class-conditional
    # True: a style-based G (StyleGAN2) that takes G(z, y, truncation_psi=, truncation_cutoff=,
    # noise_mode=) and has ``mapping`` and ``synthesis``: truncation and style mixing in w
    style_based: bool = False


class Discriminator(nn.Module):
    """D(x) -> logits (B,), or (B, 1 + aux_classes) with an ACGAN head; D(x, y) when conditional;
    D(a, b) for a pair discriminator (``pairwise``)."""

    image_size: int = 64
    channels: int = 3
    num_classes: int = 0
    aux_classes: int = 0  # an ACGAN classifier's classes (0: none)
    pairwise: bool = False


def call_generator(G: nn.Module, z: Tensor, y: Tensor | None) -> Tensor:
    """G(z), or G(z, y) with class labels y (B,) for a conditional G."""
    return G(z) if y is None else G(z, y)
