"""DCGAN generator and discriminator.

Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep Convolutional
Generative Adversarial Networks", ICLR 2016 (arXiv:1511.06434): strided (transposed)
convolutions instead of pooling, BatchNorm in both nets (not on G's output nor D's input),
ReLU in G with a tanh output, LeakyReLU(0.2) in D, weights drawn from N(0, 0.02).

Sizes: a 4x4 seed is doubled ``log2(image_size) - 2`` times, so 32, 64 and 128 px use 3, 4
and 5 up/down-sampling stages; channel widths halve towards the image (G) and double away
from it (D), exactly the 64 px layout of the pytorch/examples recipe at ``ngf=ndf=64``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

from ganlab.models.attention import SelfAttention
from ganlab.models.base import Discriminator, Generator
from ganlab.models.conditional import (
    ConditionalBatchNorm,
    CondSequential,
    HierarchicalLatent,
    LatentBatchNorm,
    batch_norm,
    run_with,
    with_aux,
)

SUPPORTED_SIZES = (32, 64, 128)


def _num_stages(image_size: int) -> int:
    if image_size not in SUPPORTED_SIZES:
        raise ValueError(
            f"DCGAN supports image_size in {SUPPORTED_SIZES}, got {image_size}; "
            "set data.image_size (e.g. data.image_size=64)"
        )
    return int(math.log2(image_size)) - 2


def _same_scale_padding(kernel_size: int) -> tuple[int, int]:
    """(padding, output_padding) for which a stride-2 conv halves and its transpose doubles."""
    if kernel_size not in (4, 5):
        raise ValueError(f"kernel_size must be 4 (the DCGAN default) or 5, got {kernel_size}")
    # k=4: (n + 2 - 4)/2 + 1 = n/2 and (n-1)*2 - 2 + 4 = 2n.
    # k=5: (n + 4 - 5)//2 + 1 = n/2 and (n-1)*2 - 4 + 5 + 1 = 2n.
    return (1, 0) if kernel_size == 4 else (2, 1)


def apply_spectral_norm_(module: nn.Module) -> None:
    """Spectral normalisation (Miyato et al., ICLR 2018) on every conv and linear weight:
    W / sigma(W), sigma estimated by one power iteration per training forward. Keeps D
    1-Lipschitz per layer, which steadies training; SAGAN also applies it to G."""
    for name, child in list(module.named_children()):
        if isinstance(child, ConditionalBatchNorm):
            continue  # its gain maps start at zero, where sigma(W) = 0: normalising would divide by 0
        if isinstance(child, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            setattr(module, name, _sn(child))
        else:
            apply_spectral_norm_(child)


def _check_attention(attention_res: int | None, image_size: int) -> None:
    valid = [2**i for i in range(3, int(math.log2(image_size)))]
    if attention_res is not None and attention_res not in valid:
        raise ValueError(f"attention_res must be one of {valid} for {image_size} px, got {attention_res}")


def dcgan_init_(module: nn.Module) -> None:
    """DCGAN initialisation (paper, section 4): conv/linear weights ~ N(0, 0.02),
    BatchNorm scale ~ N(1, 0.02) and shift 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.affine:  # (conditional BN: no affine)
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    for m in module.modules():  # after the loop above, which also visited their linear maps
        if isinstance(m, (ConditionalBatchNorm, LatentBatchNorm)):
            m.reset_parameters()


def _projection(first_layer: str, nz_in: int, width: int, norm: Callable[..., nn.Module]) -> list[nn.Module]:
    """G's first layer: z (B, nz, 1, 1) -> (B, width, 4, 4), by a 4x4 transposed convolution or
    by Linear + reshape; then ``norm`` and ReLU."""
    if first_layer == "conv":
        return [nn.ConvTranspose2d(nz_in, width, 4, 1, 0, bias=False), norm(width), nn.ReLU(True)]
    return [nn.Flatten(), nn.Linear(nz_in, width * 16, bias=False), norm(width * 16, dims=1), nn.ReLU(True),
            nn.Unflatten(1, (width, 4, 4))]  # fmt: skip


def _upsampling(
    stages: int, width: int, channels: int, kernel_size: int, attention_res: int | None, norm
) -> list[nn.Module]:
    """G's body: ``stages - 1`` stages (B, C, s, s) -> (B, C/2, 2s, 2s), each transposed
    convolution + ``norm`` + ReLU (a SAGAN block after the one reaching ``attention_res``), then the
    last to ``channels`` and tanh."""
    pad, out_pad = _same_scale_padding(kernel_size)
    layers: list[nn.Module] = []
    res = 4
    for _ in range(stages - 1):
        layers += [
            nn.ConvTranspose2d(width, width // 2, kernel_size, 2, pad, out_pad, bias=False),
            norm(width // 2),
            nn.ReLU(True),
        ]
        width //= 2
        res *= 2
        if res == attention_res:
            layers.append(SelfAttention(width))
    return layers + [nn.ConvTranspose2d(width, channels, kernel_size, 2, pad, out_pad, bias=False), nn.Tanh()]


class DCGANGenerator(Generator):
    """z (B, nz) or (B, nz, 1, 1) -> image (B, channels, image_size, image_size) in [-1, 1].

    ``first_layer="conv"`` projects z with a 4x4 transposed convolution (pytorch/examples);
    ``first_layer="linear"`` uses Linear(nz, C*4*4) + BatchNorm1d + ReLU and a reshape, as in
    the paper's figure 1 and most TensorFlow ports. ``attention_res``: insert a SAGAN
    self-attention block after the stage that outputs this resolution (8 .. image_size/2).
    ``num_classes`` > 0: class-conditional, every BatchNorm a ``ConditionalBatchNorm``;
    ``forward(z, y)`` with labels y (B,).
    ``hierarchical_z``: BigGAN's hierarchical latent (``ganlab.models.conditional``): z split into
    one chunk for the projection and one per BatchNorm after it, each setting that BatchNorm's
    scale and shift (with the class embedding when conditional); else z enters only the first
    layer. Either way the BatchNorm after G's input renormalises z's input chunk, so truncation
    changes little (``ganlab.models.conditional``), unless ``constant_input``: the projection then
    reads a learned constant and z enters only through the BatchNorms' scales and shifts.
    """

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        nz: int = 100,
        ngf: int = 64,
        kernel_size: int = 4,
        first_layer: str = "conv",
        spectral_norm: bool = False,
        attention_res: int | None = None,
        num_classes: int = 0,
        hierarchical_z: bool = False,
        constant_input: bool = False,
    ) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        check_constant_input(constant_input, hierarchical_z)
        if first_layer not in ("conv", "linear"):
            raise ValueError(f"first_layer must be 'conv' or 'linear', got {first_layer!r}")
        self.nz, self.image_size, self.channels, self.num_classes = nz, image_size, channels, num_classes
        stages = _num_stages(image_size)
        _check_attention(attention_res, image_size)
        width = ngf * 2 ** (stages - 1)  # 64 px, ngf 64: 512 channels at 4x4
        seq = CondSequential if num_classes > 0 and not hierarchical_z else nn.Sequential
        # one BatchNorm after the projection and one per upsampling stage: each its own z chunk
        self.latent = (
            HierarchicalLatent(nz, stages, num_classes, constant_input=constant_input)
            if hierarchical_z
            else None
        )
        nz_in = self.latent.input_dim if self.latent is not None else nz
        bns = iter(range(stages))

        def norm(c: int, dims: int = 2) -> nn.Module:
            if self.latent is not None:
                return LatentBatchNorm(c, self.latent.cond_dim(next(bns)), dims, zero_init=not constant_input)
            return batch_norm(c, num_classes, dims)

        self.project = seq(*_projection(first_layer, nz_in, width, norm))
        self.body = seq(*_upsampling(stages, width, channels, kernel_size, attention_res, norm))
        dcgan_init_(self)
        if spectral_norm:
            apply_spectral_norm_(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.latent is not None:
            z0, conds = self.latent(z, y)  # G's input (B, nz0), [(B, chunk + embed)] one per BatchNorm
            return run_with(self.body, run_with(self.project, z0[:, :, None, None], conds[:1]), conds[1:])
        if z.dim() == 2:
            z = z[:, :, None, None]
        if self.num_classes:
            return self.body(self.project(z, y), y)
        return self.body(self.project(z))


class DCGANDiscriminator(Discriminator):
    """image (B, channels, s, s) -> logit (B,): positive means "real". No sigmoid, so the losses
    can use the numerically stable, autocast-safe ``*_with_logits`` forms.

    ``dropout`` > 0 adds Dropout after every LeakyReLU of the trunk (a common remedy for D
    overfitting small datasets). ``features(x)`` returns the flattened (B, C*4*4) trunk output,
    which the Siamese discriminator reuses as its branch. ``norm="none"`` drops BatchNorm (the
    usual choice with ``spectral_norm``, as in SNGAN); ``attention_res``: a SAGAN block after
    the stage that outputs this resolution.
    ``num_classes`` > 0: class-conditional, ``forward(x, y)``: with ``projection`` the
    projection term <embed(y), sum-pooled features> is added to the logit (Miyato & Koyama
    2018); with ``aux_classifier`` an ACGAN head on the flattened features returns class logits
    too, as (B, 1 + K) (``ganlab.models.conditional``).
    """

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        ndf: int = 64,
        kernel_size: int = 4,
        dropout: float = 0.0,
        norm: str = "batch",
        spectral_norm: bool = False,
        attention_res: int | None = None,
        num_classes: int = 0,
        projection: bool = True,
        aux_classifier: bool = False,
    ) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        if norm not in ("batch", "none"):
            raise ValueError(f"norm must be 'batch' or 'none', got {norm!r}")
        _check_attention(attention_res, image_size)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.image_size, self.channels = image_size, channels
        stages = _num_stages(image_size)
        pad, _ = _same_scale_padding(kernel_size)

        def act() -> list[nn.Module]:
            return [nn.LeakyReLU(0.2, True)] + ([nn.Dropout(dropout)] if dropout > 0 else [])

        # No BatchNorm on D's input layer (paper, section 3).
        layers: list[nn.Module] = [nn.Conv2d(channels, ndf, kernel_size, 2, pad, bias=False), *act()]
        width, res = ndf, image_size // 2
        if res == attention_res:
            layers.append(SelfAttention(width))
        for _ in range(stages - 1):  # each stage: (B, C, s, s) -> (B, 2C, s/2, s/2)
            layers.append(nn.Conv2d(width, width * 2, kernel_size, 2, pad, bias=False))
            if norm == "batch":
                layers.append(nn.BatchNorm2d(width * 2))
            layers += act()
            width, res = width * 2, res // 2
            if res == attention_res:
                layers.append(SelfAttention(width))
        self.trunk = nn.Sequential(*layers)  # -> (B, width, 4, 4)
        self.feature_dim = width * 16
        self.head = nn.Conv2d(width, 1, 4, 1, 0, bias=False)  # (B, width, 4, 4) -> (B, 1, 1, 1)
        self.num_classes = num_classes
        check_conditioning(num_classes, projection, aux_classifier)
        self.embed = nn.Embedding(num_classes, width) if num_classes and projection else None
        self.aux = nn.Linear(self.feature_dim, num_classes) if num_classes and aux_classifier else None
        self.aux_classes = num_classes if aux_classifier else 0
        dcgan_init_(self)
        if self.embed is not None:  # as D's other weights (DCGAN init)
            nn.init.normal_(self.embed.weight, 0.0, 0.02)
        if spectral_norm:
            apply_spectral_norm_(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x).flatten(1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.trunk(x)  # (B, width, 4, 4)
        logits = self.head(h).flatten()
        if not self.num_classes:
            return logits
        if self.embed is not None:  # projection: + <embed(y), sum over the 4x4 positions of h>
            logits = logits + (self.embed(y) * h.sum(dim=(2, 3))).sum(dim=1)
        return with_aux(logits, self.aux(h.flatten(1)) if self.aux is not None else None)


def check_conditioning(num_classes: int, projection: bool, aux_classifier: bool) -> None:
    """A conditional D must see the labels somewhere: the projection term, the ACGAN head or both."""
    if num_classes < 0:
        raise ValueError(f"num_classes must be >= 0, got {num_classes}")
    if num_classes and not (projection or aux_classifier):
        raise ValueError(
            "a conditional discriminator needs model.discriminator.projection=true (projection "
            "discriminator) or model.discriminator.aux_classifier=true (ACGAN), or both"
        )


def check_constant_input(constant_input: bool, hierarchical_z: bool) -> None:
    """A constant input leaves z nowhere to go but the hierarchical latent's BatchNorms."""
    if constant_input and not hierarchical_z:
        raise ValueError(
            "model.generator.constant_input=true needs model.generator.hierarchical_z=true (z then "
            "enters through the blocks' BatchNorms); or set constant_input=false"
        )
