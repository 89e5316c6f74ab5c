"""Building blocks of class-conditional G and D.

- ``ConditionalBatchNorm``: BatchNorm without its own affine, then a per-class scale and shift
  (de Vries et al. 2017; Miyato & Koyama 2018), computed from a class embedding as BigGAN
  does. Scales start at 1 and shifts at 0, so at initialisation the layer is plain BatchNorm.
- ``LatentBatchNorm`` and ``HierarchicalLatent``: BigGAN's hierarchical latent (Brock et al.
  2019, section 3 and appendix B): z split into chunks, the first for G's input, each next one,
  with the class embedding when conditional, setting one block's BatchNorm scale and shift; z
  then reaches every block instead of only the first layer. Truncation still buys little: the
  input's chunk is renormalised by the BatchNorm after it (under standing statistics any
  shrinking of it is undone), and a trained G keeps its variety there (experiments/README.md).
  With ``constant_input`` G's input is a learned constant (StyleGAN's choice) and z reaches G
  only through the blocks' scales and shifts, where truncation acts: on the conditional
  Fashion-MNIST recipe with MSGAN's term (without it this G collapses within each class),
  precision and class accuracy rise and recall falls as the threshold goes 1.0 -> 0.4
  (experiments/README.md, "The hierarchical latent and truncation").
- ``ProjectionHead``: the projection discriminator's class term (Miyato & Koyama, "cGANs with
  Projection Discriminator", ICLR 2018): logit = psi(phi(x)) + <embed(y), phi(x)>, with phi(x)
  D's globally pooled features (B, F).
- ACGAN's auxiliary classifier (Odena et al., "Conditional Image Synthesis with Auxiliary
  Classifier GANs", ICML 2017): a linear head on the same features giving class logits (B, K),
  trained by the loss's ``acgan_weight`` term.

Convention: a conditional D returns (B,) adversarial logits, or (B, 1 + K) when it has an
auxiliary classifier: column 0 the adversarial logit, columns 1..K the class logits
(``ganlab.losses.base.split_logits``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ConditionalBatchNorm(nn.Module):
    """x (B, C, ...) and labels y (B,) -> BN(x) * (1 + gain(e_y)) + bias(e_y), per channel, with
    e_y a learned class embedding (``embed_dim``) and gain, bias linear maps to the C channels,
    as BigGAN computes its gains (Brock et al. 2019, there from one embedding shared by all
    layers). The factorisation matters for speed: a per-class gain table changes by at most
    about the learning rate per Adam step (~0.04 after 600 steps at 2e-4, too slow for classes
    to show in a short run), a linear map of an embedding by up to ``embed_dim`` times that.
    The maps start at zero, so at initialisation the layer is plain BatchNorm."""

    def __init__(self, num_features: int, num_classes: int, dims: int = 2, embed_dim: int = 128) -> None:
        super().__init__()
        self.bn = (nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d)(num_features, affine=False)
        self.embed = nn.Embedding(num_classes, embed_dim)  # N(0, 1) rows
        self.gain = nn.Linear(embed_dim, num_features, bias=False)
        self.bias = nn.Linear(embed_dim, num_features, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embed.weight)
        nn.init.zeros_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        shape = (x.shape[0], x.shape[1]) + (1,) * (x.dim() - 2)  # (B, C, 1, 1) for images
        e = self.embed(y)  # (B, embed_dim)
        return self.bn(x) * (1 + self.gain(e)).view(shape) + self.bias(e).view(shape)


class CondSequential(nn.Sequential):
    """``nn.Sequential`` whose ``ConditionalBatchNorm`` layers (and any layer taking labels)
    get the labels: ``forward(x, y)``."""

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:  # type: ignore[override]
        for layer in self:
            x = apply(layer, x, y)
        return x


def apply(layer: nn.Module, x: Tensor, y: Tensor | None) -> Tensor:
    """``layer(x, y)`` for the layers that take labels (or a conditioning vector), ``layer(x)``
    for the others."""
    takes = (ConditionalBatchNorm, CondSequential, LatentBatchNorm)
    return layer(x, y) if isinstance(layer, takes) else layer(x)


class LatentBatchNorm(nn.Module):
    """x (B, C, ...) and a conditioning vector c (B, cond_dim) -> BN(x) * (1 + gain(c)) + bias(c),
    per channel: BigGAN's conditional BatchNorm fed [z chunk, class embedding]. With
    ``zero_init`` the maps start at zero (plain BatchNorm at initialisation, as
    ``ConditionalBatchNorm``); else they keep nn.Linear's initialisation (U(+-1/sqrt(cond_dim)):
    a gain of std ~0.58 for a unit-variance c), as BigGAN's, so z varies every block from the
    first step: what a G whose input is a constant needs, or it starts with no variety at all."""

    def __init__(self, num_features: int, cond_dim: int, dims: int = 2, zero_init: bool = True) -> None:
        super().__init__()
        self.zero_init = zero_init
        self.bn = (nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d)(num_features, affine=False)
        self.gain = nn.Linear(cond_dim, num_features, bias=False)
        self.bias = nn.Linear(cond_dim, num_features, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in (self.gain, self.bias):
            if self.zero_init:
                nn.init.zeros_(m.weight)
            else:
                m.reset_parameters()

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        shape = (x.shape[0], x.shape[1]) + (1,) * (x.dim() - 2)  # (B, C, 1, 1) for images
        return self.bn(x) * (1 + self.gain(c)).view(shape) + self.bias(c).view(shape)


def run_with(seq: nn.Sequential, x: Tensor, conds: list[Tensor]) -> Tensor:
    """``seq`` on ``x``, each ``LatentBatchNorm`` in it fed the next of ``conds`` in order."""
    it = iter(conds)
    for layer in seq:
        x = layer(x, next(it)) if isinstance(layer, LatentBatchNorm) else layer(x)
    return x


class HierarchicalLatent(nn.Module):
    """z (B, nz) [and labels y (B,)] -> G's input (B, ``input_dim``) and one conditioning
    vector per block (B, chunk + embed_dim): z split into nearly equal chunks
    (``torch.tensor_split``), one per block, each joined by the class embedding shared by all
    blocks (BigGAN's shared embedding) when ``num_classes`` > 0. G's input is one more chunk of z
    (BigGAN), or with ``constant_input`` a learned constant (B, nz) (StyleGAN's choice).

    Why a constant: with a BatchNorm after G's first layer, z's input chunk is renormalised, so
    under standing statistics truncating it changes nothing, and a trained G keeps its variety
    there (experiments/README.md). With a constant input all the variety comes through the
    blocks' scales and shifts, applied after the normalisation, where truncation reaches it."""

    def __init__(
        self, nz: int, blocks: int, num_classes: int = 0, embed_dim: int = 128, constant_input: bool = False
    ) -> None:
        super().__init__()
        chunks = blocks if constant_input else blocks + 1
        if nz < chunks:
            raise ValueError(f"hierarchical_z needs nz >= {chunks} (a chunk for each block"
                             f"{'' if constant_input else ' and the input'}), got {nz}")  # fmt: skip
        self.nz, self.blocks = nz, blocks
        # the chunks' widths: the input's first (none with a constant input), then each block's
        self.sizes = [len(c) for c in torch.arange(nz).tensor_split(chunks)]
        self.first = 0 if constant_input else 1  # index of block 0's chunk in ``sizes``
        self.constant = nn.Parameter(torch.randn(1, nz)) if constant_input else None
        self.input_dim = nz if constant_input else self.sizes[0]
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes > 0 else None
        if self.embed is not None:
            nn.init.normal_(self.embed.weight)
        self.embed_dim = embed_dim if num_classes > 0 else 0

    def cond_dim(self, block: int) -> int:
        """The conditioning width of block ``block`` (0-based)."""
        return self.sizes[block + self.first] + self.embed_dim

    def forward(self, z: Tensor, y: Tensor | None = None) -> tuple[Tensor, list[Tensor]]:
        chunks = list(z.flatten(1).tensor_split(len(self.sizes), dim=1))
        start = chunks.pop(0) if self.constant is None else self.constant.expand(z.shape[0], -1)
        if self.embed is None:
            return start, chunks
        if y is None:
            raise ValueError("a conditional generator needs labels: G(z, y)")
        e = self.embed(y)  # (B, embed_dim)
        return start, [torch.cat([c, e], dim=1) for c in chunks]


def batch_norm(num_features: int, num_classes: int = 0, dims: int = 2) -> nn.Module:
    """Plain BatchNorm (unconditional) or its class-conditional form."""
    if num_classes > 0:
        return ConditionalBatchNorm(num_features, num_classes, dims)
    return (nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d)(num_features)


class ProjectionHead(nn.Module):
    """features (B, F) [and labels (B,)] -> logits (B,): linear(features) + <embed(y), features>."""

    def __init__(self, num_features: int, num_classes: int = 0) -> None:
        super().__init__()
        self.linear = nn.Linear(num_features, 1)
        self.embed = nn.Embedding(num_classes, num_features) if num_classes > 0 else None
        if self.embed is not None:
            nn.init.xavier_uniform_(self.embed.weight)

    def forward(self, h: Tensor, y: Tensor | None = None) -> Tensor:
        out = self.linear(h).flatten()
        if self.embed is not None:
            if y is None:
                raise ValueError("a conditional discriminator needs labels: D(x, y)")
            out = out + (self.embed(y) * h).sum(dim=1)
        return out


def with_aux(logits: Tensor, class_logits: Tensor | None) -> Tensor:
    """(B,) adversarial logits, or (B, 1 + K) with the auxiliary classifier's (B, K) appended."""
    if class_logits is None:
        return logits
    return torch.cat([logits[:, None], class_logits.to(logits.dtype)], dim=1)
