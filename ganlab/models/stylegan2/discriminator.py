"""The StyleGAN2 discriminator's parts: the per-resolution blocks, the minibatch standard
deviation layer and the 4x4 epilogue with the projection onto the mapped label.

Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020 (the residual
discriminator); Karras et al., "Training Generative Adversarial Networks with Limited Data",
NeurIPS 2020 (StyleGAN2-ADA's conditioning by projection, Freeze-D, mixed precision). An
independent implementation (no custom CUDA plugin; nothing compiled) with the official
parameter and buffer names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ganlab.models.stylegan2.layers import Conv2dLayer, FullyConnectedLayer, ReducedPrecision
from ganlab.models.stylegan2.ops import downsample2d, setup_filter
from ganlab.models.stylegan2.synthesis import _check_architecture


class DiscriminatorBlock(ReducedPrecision, nn.Module):
    """One resolution R -> R/2: (x (B, tmp, R, R) or None, img) -> (x (B, out, R/2, R/2), img).
    ``fromrgb`` reads the image in the first block (and in every block with ``skip``, each one
    given the image downsampled once more). Layers numbered below ``freeze_layers`` (counted
    from the first block) are frozen: their weights become buffers (Freeze-D)."""

    def __init__(
        self,
        in_channels: int,
        tmp_channels: int,
        out_channels: int,
        resolution: int,
        img_channels: int,
        first_layer_idx: int,
        architecture: str = "resnet",
        activation: str = "lrelu",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        use_fp16: bool = False,
        fp16_channels_last: bool = False,
        freeze_layers: int = 0,
    ) -> None:
        if in_channels not in (0, tmp_channels):
            raise ValueError(f"in_channels must be 0 or tmp_channels ({tmp_channels}), got {in_channels}")
        _check_architecture(architecture)
        super().__init__()
        self.in_channels, self.resolution, self.img_channels = in_channels, resolution, img_channels
        self.first_layer_idx, self.architecture, self.use_fp16 = first_layer_idx, architecture, use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.num_layers = 0

        def conv(cin: int, cout: int, kernel_size: int, **kwargs) -> Conv2dLayer:
            trainable = first_layer_idx + self.num_layers >= freeze_layers
            self.num_layers += 1
            return Conv2dLayer(
                cin, cout, kernel_size, trainable=trainable, channels_last=self.channels_last, **kwargs
            )

        if in_channels == 0 or architecture == "skip":
            self.fromrgb = conv(img_channels, tmp_channels, 1, activation=activation, conv_clamp=conv_clamp)
        self.conv0 = conv(tmp_channels, tmp_channels, 3, activation=activation, conv_clamp=conv_clamp)
        self.conv1 = conv(
            tmp_channels,
            out_channels,
            3,
            activation=activation,
            down=2,
            resample_filter=resample_filter,
            conv_clamp=conv_clamp,
        )
        if architecture == "resnet":
            self.skip = conv(
                tmp_channels, out_channels, 1, bias=False, down=2, resample_filter=resample_filter
            )

    def forward(
        self, x: Tensor | None, img: Tensor | None, force_fp32: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        device = (x if x is not None else img).device
        dtype = self.compute_dtype(device, force_fp32)
        x = None if x is None else x.to(dtype)
        if self.in_channels == 0 or self.architecture == "skip":
            img = img.to(dtype)
            y = self.fromrgb(img)
            x = y if x is None else x + y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        if self.architecture == "resnet":
            shortcut = self.skip(x, gain=math.sqrt(0.5))  # sqrt(1/2) on both branches: unit variance
            x = shortcut + self.conv1(self.conv0(x), gain=math.sqrt(0.5))
        else:
            x = self.conv1(self.conv0(x))
        return x, img


class MinibatchStdLayer(nn.Module):
    """Appends ``num_channels`` feature maps: the standard deviation across a group of
    ``group_size`` samples, averaged over channels and pixels, which lets D see a batch's
    variety. Sample i falls in group i mod (B / G); B must be a multiple of G = min(group_size, B)."""

    def __init__(self, group_size: int | None, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        g = n if self.group_size is None else min(self.group_size, n)
        f = self.num_channels
        if n % g:
            raise ValueError(f"minibatch-std: the batch ({n}) must be a multiple of the group size ({g})")
        y = x.reshape(g, -1, f, c // f, h, w)  # (G, B/G, F, C/F, H, W)
        y = (y - y.mean(dim=0)).square().mean(dim=0)  # variance over the group
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])  # (B/G, F): mean std over channels and pixels
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)  # (B, F, H, W), each sample its group's
        return torch.cat([x, y], dim=1)


class DiscriminatorEpilogue(nn.Module):
    """4x4 features (B, C, 4, 4) -> logits (B, 1). Conditional (``cmap_dim`` > 0): the output
    (B, cmap_dim) projected onto the mapped label, scaled by 1/sqrt(cmap_dim). ``aux_classes`` > 0
    (ganlab's, not the official's): an ACGAN classifier on the same features (Odena et al. 2017),
    its class logits after the adversarial one: (B, 1 + aux_classes)."""

    def __init__(
        self,
        in_channels: int,
        cmap_dim: int,
        resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        mbstd_group_size: int | None = 4,
        mbstd_num_channels: int = 1,
        activation: str = "lrelu",
        conv_clamp: float | None = None,
        aux_classes: int = 0,
    ) -> None:
        _check_architecture(architecture)
        super().__init__()
        self.in_channels, self.cmap_dim, self.resolution = in_channels, cmap_dim, resolution
        self.img_channels, self.architecture = img_channels, architecture
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = (
            MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        )
        self.conv = Conv2dLayer(
            in_channels + mbstd_num_channels,
            in_channels,
            kernel_size=3,
            activation=activation,
            conv_clamp=conv_clamp,
        )
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)
        if aux_classes > 0:
            self.aux = FullyConnectedLayer(in_channels, aux_classes)

    def forward(self, x: Tensor, img: Tensor | None, cmap: Tensor | None, force_fp32: bool = False) -> Tensor:
        x = x.to(torch.float32)  # the epilogue always runs in float32
        if self.architecture == "skip":
            x = x + self.fromrgb(img.to(torch.float32))
        if self.mbstd is not None:
            x = self.mbstd(x)
        h = self.fc(self.conv(x).flatten(1))  # (B, C)
        x = self.out(h)
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
        return torch.cat([x, self.aux(h)], dim=1) if hasattr(self, "aux") else x
