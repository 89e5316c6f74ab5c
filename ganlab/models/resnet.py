"""ResNet generator and discriminator for 32, 64 and 128 px, as SNGAN and BigGAN build them.

Miyato et al., "Spectral Normalization for GANs", ICLR 2018 (appendix B, the ResNet models);
Miyato & Koyama, "cGANs with Projection Discriminator", ICLR 2018 (conditional BN in G,
projection in D); Brock et al., "Large Scale GAN Training" (BigGAN), ICLR 2019 (the 128 px
channel plan). The same layouts as mimicry's and StudioGAN's SNGAN/BigGAN-style models.

G: z (B, nz) -> Linear -> (B, c0, 4, 4) -> up-blocks (BN-ReLU-up-conv3-BN-ReLU-conv3, plus a
1x1 shortcut on the upsampled input) -> BN-ReLU-conv3-tanh -> (B, channels, s, s).
D: image -> down-blocks (the first "optimized": conv3-ReLU-conv3-avgpool, shortcut avgpool-1x1;
then ReLU-conv3-ReLU-conv3[-avgpool], shortcut 1x1[-avgpool]) -> ReLU -> sum over positions ->
(B, F) -> Linear (+ projection <embed(y), h>; + ACGAN head) -> logits (B,) or (B, 1 + K).

Channel plans (``ngf``/``ndf`` = 64 reproduce the published widths):
  32 px:  G 4 x [4,4,4] x ngf (256 at 4..32 px, SNGAN CIFAR-10); D [2,2,2,2] x ndf (128, SNGAN)
  64 px:  G [16,8,4,2,1] x ngf (1024 -> 64);  D [1,2,4,8,16] x ndf (64 -> 1024)
  128 px: G [16,16,8,4,2,1] x ngf;  D [1,2,4,8,16,16] x ndf (BigGAN's ch=64 plan)
Parameter counts at ngf = ndf = 64, nz 128, 3 channels, no attention (``tests/unit/test_models.py``
checks them; conditional: each BN of G becomes ``ConditionalBatchNorm``, D adds width x classes):
  32 px:  G 4,276,739  D 1,053,825    (SNGAN CIFAR-10: G ch 256, D ch 128)
  64 px:  G 12,220,675 D 19,542,721   (mimicry's SNGAN 64: ngf = ndf = 1024 at 4x4)
  128 px: G 32,150,787 D 38,419,137   (BigGAN ch 64, without its shared embedding and attention)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.models.attention import SelfAttention
from ganlab.models.base import Discriminator, Generator
from ganlab.models.conditional import (
    HierarchicalLatent,
    LatentBatchNorm,
    ProjectionHead,
    apply,
    batch_norm,
    with_aux,
)
from ganlab.models.dcgan import apply_spectral_norm_, check_conditioning, check_constant_input

G_PLANS = {32: (4, 4, 4, 4), 64: (16, 8, 4, 2, 1), 128: (16, 16, 8, 4, 2, 1)}
D_PLANS = {32: (2, 2, 2, 2), 64: (1, 2, 4, 8, 16), 128: (1, 2, 4, 8, 16, 16)}
D_DOWN = {32: (True, True, False, False), 64: (True, True, True, True, False),
          128: (True, True, True, True, True, False)}  # fmt: skip


def _plan(image_size: int) -> None:
    if image_size not in G_PLANS:
        raise ValueError(
            f"the ResNet backbone supports image_size in {tuple(G_PLANS)}, got {image_size}; "
            "set data.image_size (e.g. data.image_size=64)"
        )


def _xavier_(module: nn.Module, gain: float) -> nn.Module:
    nn.init.xavier_uniform_(module.weight, gain)
    if module.bias is not None:
        nn.init.zeros_(module.bias)
    return module


def _conv(cin: int, cout: int, k: int, gain: float = math.sqrt(2)) -> nn.Conv2d:
    """SNGAN's initialisation: Xavier-uniform, gain sqrt(2) in the residual path, 1 on shortcuts."""
    return _xavier_(nn.Conv2d(cin, cout, k, 1, k // 2), gain)


class GBlock(nn.Module):
    """(B, cin, s, s) -> (B, cout, 2s, 2s); BN conditional on y when ``num_classes`` > 0, or on a
    conditioning vector c (B, ``cond_dim``) when ``cond_dim`` > 0 (the hierarchical latent:
    ``forward(x, c)``)."""

    def __init__(
        self, cin: int, cout: int, num_classes: int = 0, cond_dim: int = 0, zero_init: bool = True
    ) -> None:
        super().__init__()
        if cond_dim > 0:
            self.bn1 = LatentBatchNorm(cin, cond_dim, zero_init=zero_init)
            self.bn2 = LatentBatchNorm(cout, cond_dim, zero_init=zero_init)
        else:
            self.bn1, self.bn2 = batch_norm(cin, num_classes), batch_norm(cout, num_classes)
        self.conv1, self.conv2 = _conv(cin, cout, 3), _conv(cout, cout, 3)
        self.shortcut = _conv(cin, cout, 1, gain=1.0)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = F.interpolate(F.relu(apply(self.bn1, x, y)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(apply(self.bn2, self.conv1(h), y)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class DBlock(nn.Module):
    """(B, cin, s, s) -> (B, cout, s/2, s/2) with ``down`` (else same size). ``first``: the
    "optimized" input block (no ReLU before the first conv; the shortcut pools first)."""

    def __init__(self, cin: int, cout: int, down: bool, first: bool = False) -> None:
        super().__init__()
        self.down, self.first = down, first
        self.conv1, self.conv2 = _conv(cin, cout, 3), _conv(cout, cout, 3)
        self.shortcut = _conv(cin, cout, 1, gain=1.0) if (cin != cout or down) else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(x if self.first else F.relu(x))
        h = self.conv2(F.relu(h))
        if self.down:
            h = F.avg_pool2d(h, 2)
        sc = x
        if self.shortcut is not None:
            if self.first:  # pool, then 1x1 (cheaper on the 3-channel input)
                sc = self.shortcut(F.avg_pool2d(x, 2) if self.down else x)
            else:
                sc = self.shortcut(x)
                sc = F.avg_pool2d(sc, 2) if self.down else sc
        return h + sc


class ResNetGenerator(Generator):
    """z (B, nz) [, labels y (B,)] -> images (B, channels, image_size, image_size) in [-1, 1].

    ``num_classes`` > 0: conditional BN in every block (Miyato & Koyama 2018).
    ``attention_res``: a SAGAN self-attention block after the block that outputs this resolution.
    ``spectral_norm``: on G's layers too (SAGAN, BigGAN); SNGAN leaves G without it.
    ``hierarchical_z``: BigGAN's hierarchical latent: z split into a chunk for the linear input
    and one per block, each with the class embedding (when conditional) setting both of that
    block's BatchNorms (``ganlab.models.conditional.HierarchicalLatent``); with
    ``constant_input`` the linear input reads a learned constant instead of a chunk of z."""

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 3,
        nz: int = 128,
        ngf: int = 64,
        num_classes: int = 0,
        spectral_norm: bool = False,
        attention_res: int | None = None,
        hierarchical_z: bool = False,
        constant_input: bool = False,
    ) -> None:
        super().__init__()
        _plan(image_size)
        check_constant_input(constant_input, hierarchical_z)
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        self.nz, self.image_size, self.channels, self.num_classes = nz, image_size, channels, num_classes
        widths = [m * ngf for m in G_PLANS[image_size]]
        self.c0 = widths[0]
        blocks = len(widths) - 1
        self.latent = (
            HierarchicalLatent(nz, blocks, num_classes, constant_input=constant_input)
            if hierarchical_z
            else None
        )
        nz_in = self.latent.input_dim if self.latent is not None else nz
        self.linear = _xavier_(nn.Linear(nz_in, widths[0] * 16), 1.0)
        self.blocks = nn.ModuleList()
        self.attention = nn.ModuleDict()
        res = 4
        for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:])):
            if self.latent is not None:
                self.blocks.append(
                    GBlock(cin, cout, cond_dim=self.latent.cond_dim(i), zero_init=not constant_input)
                )
            else:
                self.blocks.append(GBlock(cin, cout, num_classes))
            res *= 2
            if res == attention_res:
                self.attention[str(len(self.blocks) - 1)] = SelfAttention(cout)
        if attention_res is not None and not self.attention:
            raise ValueError(f"attention_res must be one of {[4 * 2**i for i in range(1, len(widths))][:-1]}")
        self.out_bn = nn.BatchNorm2d(widths[-1])
        self.out_conv = _xavier_(nn.Conv2d(widths[-1], channels, 3, 1, 1), 1.0)
        if spectral_norm:
            apply_spectral_norm_(self)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if self.latent is not None:  # (B, nz0) chunk or constant in, one (B, chunk + embed) per block
            z, conds = self.latent(z, y)
        else:
            conds = [y] * len(self.blocks)
        h = self.linear(z.flatten(1)).view(z.shape[0], self.c0, 4, 4)
        for i, block in enumerate(self.blocks):
            h = block(h, conds[i])
            if str(i) in self.attention:
                h = self.attention[str(i)](h)
        return torch.tanh(self.out_conv(F.relu(self.out_bn(h))))


class ResNetDiscriminator(Discriminator):
    """images (B, channels, s, s) [, labels y (B,)] -> logits (B,), or (B, 1 + K) with
    ``aux_classifier`` (ACGAN). ``num_classes`` > 0 with ``projection``: the projection
    discriminator. ``spectral_norm`` on every layer (SNGAN's D), on by default.
    ``attention_res``: a self-attention block before the block that takes this resolution."""

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 3,
        ndf: int = 64,
        num_classes: int = 0,
        projection: bool = True,
        aux_classifier: bool = False,
        spectral_norm: bool = True,
        attention_res: int | None = None,
    ) -> None:
        super().__init__()
        _plan(image_size)
        check_conditioning(num_classes, projection, aux_classifier)
        self.image_size, self.channels, self.num_classes = image_size, channels, num_classes
        widths = [m * ndf for m in D_PLANS[image_size]]
        self.blocks = nn.ModuleList()
        self.attention = nn.ModuleDict()
        cin, res = channels, image_size
        for i, (cout, down) in enumerate(zip(widths, D_DOWN[image_size])):
            if res == attention_res and i > 0:
                self.attention[str(i)] = SelfAttention(cin)
            self.blocks.append(DBlock(cin, cout, down, first=i == 0))
            cin, res = cout, res // 2 if down else res
        if attention_res is not None and not self.attention:
            raise ValueError(
                f"attention_res={attention_res} is not a resolution D's blocks take at {image_size} px"
            )
        self.feature_dim = widths[-1]
        self.head = ProjectionHead(widths[-1], num_classes if projection else 0)
        _xavier_(self.head.linear, 1.0)
        self.aux = nn.Linear(widths[-1], num_classes) if num_classes and aux_classifier else None
        self.aux_classes = num_classes if aux_classifier else 0
        if spectral_norm:
            apply_spectral_norm_(self)

    def features(self, x: Tensor) -> Tensor:
        """(B, F): ReLU, then the sum over positions (SNGAN's global sum pooling)."""
        h = x
        for i, block in enumerate(self.blocks):
            if str(i) in self.attention:
                h = self.attention[str(i)](h)
            h = block(h)
        return F.relu(h).sum(dim=(2, 3))

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.features(x)
        logits = self.head(h, y if self.num_classes else None)
        return with_aux(logits, self.aux(h) if self.aux is not None else None)
