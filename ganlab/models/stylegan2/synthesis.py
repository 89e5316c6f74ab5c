"""The StyleGAN2 synthesis network: ws (B, num_ws, w_dim) -> image (B, img_channels, R, R).

Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020 (weight
demodulation instead of AdaIN, noise and bias outside the style block, skip/resnet
architectures); Karras et al., "Training Generative Adversarial Networks with Limited Data",
NeurIPS 2020 (the configuration, mixed precision and ``conv_clamp`` of StyleGAN2-ADA). An
independent implementation (no custom CUDA plugin; nothing compiled) with the official
parameter and buffer names.

A block at resolution R doubles its input (conv0, up=2), convolves again (conv1) and, in the
``skip`` architecture, adds its toRGB output to the upsampled image of the blocks before it.
Each conv layer and each toRGB consumes one w; a toRGB reuses the w of the next block's conv0,
which is why blocks' ws overlap by one and num_ws = 2 * log2(R) - 2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ganlab.models.stylegan2.layers import Conv2dLayer, FullyConnectedLayer, ReducedPrecision
from ganlab.models.stylegan2.ops import (
    activation_gain,
    bias_act,
    folded_gain,
    modulated_conv2d,
    setup_filter,
    upsample2d,
)

NOISE_MODES = ("random", "const", "none")
ARCHITECTURES = ("orig", "skip", "resnet")


def _check_architecture(architecture: str) -> None:
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (optionally upsampling by 2), per-pixel noise, bias, activation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        kernel_size: int = 3,
        up: int = 1,
        use_noise: bool = True,
        activation: str = "lrelu",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.resolution, self.up = resolution, up
        self.use_noise, self.activation, self.conv_clamp = use_noise, activation, conv_clamp
        self.channels_last = channels_last  # a memory-layout hint only
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = activation_gain(activation)
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)  # styles start at 1
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def _noise(self, x: Tensor, noise_mode: str) -> Tensor | None:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        if not self.use_noise or noise_mode == "none":
            return None
        if noise_mode == "const":
            return self.noise_const * self.noise_strength  # (R, R), the same for every sample
        shape = [x.shape[0], 1, self.resolution, self.resolution]  # one map, broadcast over channels
        return torch.randn(shape, device=x.device) * self.noise_strength

    def forward(
        self, x: Tensor, w: Tensor, noise_mode: str = "random", fused_modconv: bool = True, gain: float = 1
    ) -> Tensor:
        styles = self.affine(w)  # (B, in_channels)
        # act(g * (conv + noise + bias)) = g * act(conv + noise + bias): the gain in the (B, O)
        # demodulation coefficients and the bias where it can be, not a pass over the output
        fold, rest = folded_gain(self.activation, self.act_gain * gain)
        x = modulated_conv2d(
            x,
            self.weight,
            styles,
            noise=self._noise(x, noise_mode),
            up=self.up,
            padding=self.padding,
            resample_filter=self.resample_filter,
            flip_weight=self.up == 1,
            fused_modconv=fused_modconv,
            gain=fold,
            bias=self.bias * fold,
        )
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        return bias_act(x, act=self.activation, gain=rest, clamp=clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 convolution to colours, without demodulation (the image keeps the styles'
    scale), plus bias."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        kernel_size: int = 1,
        conv_clamp: float | None = None,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.channels_last = channels_last
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: Tensor, w: Tensor, fused_modconv: bool = True) -> Tensor:
        # equalised lr on the styles: without demodulation nothing else rescales the kernel
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(
            x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv, bias=self.bias
        )
        return bias_act(x, clamp=self.conv_clamp)


class SynthesisBlock(ReducedPrecision, nn.Module):
    """One resolution: (x at R/2, img at R/2, ws (B, num_conv + num_torgb, w_dim)) -> (x, img) at R.
    The first block (``in_channels == 0``) starts from the learned constant ``const``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        is_last: bool,
        architecture: str = "skip",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        use_fp16: bool = False,
        fp16_channels_last: bool = False,
        **layer_kwargs,
    ) -> None:
        _check_architecture(architecture)
        super().__init__()
        self.in_channels, self.w_dim, self.resolution = in_channels, w_dim, resolution
        self.img_channels, self.is_last, self.architecture = img_channels, is_last, architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        common = dict(
            w_dim=w_dim, resolution=resolution, conv_clamp=conv_clamp, channels_last=self.channels_last
        )
        self.num_conv = self.num_torgb = 0
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(
                in_channels, out_channels, up=2, resample_filter=resample_filter, **common, **layer_kwargs
            )
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, **common, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(
                out_channels,
                img_channels,
                w_dim=w_dim,
                conv_clamp=conv_clamp,
                channels_last=self.channels_last,
            )
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(
                in_channels,
                out_channels,
                kernel_size=1,
                bias=False,
                up=2,
                resample_filter=resample_filter,
                channels_last=self.channels_last,
            )

    def forward(
        self,
        x: Tensor | None,
        img: Tensor | None,
        ws: Tensor,
        force_fp32: bool = False,
        fused_modconv: bool | None = None,
        noise_mode: str = "random",
    ) -> tuple[Tensor, Tensor | None]:
        if ws.ndim != 3 or ws.shape[1] != self.num_conv + self.num_torgb:
            raise ValueError(
                f"block {self.resolution}: ws must be (B, {self.num_conv + self.num_torgb}, w_dim)"
            )
        w_each = iter(ws.unbind(dim=1))
        dtype = self.compute_dtype(ws.device, force_fp32)
        if fused_modconv is None:  # grouped kernels are cheap at inference; training scales activations
            fused_modconv = not self.training and (dtype == torch.float32 or ws.shape[0] == 1)
        layer = dict(fused_modconv=fused_modconv, noise_mode=noise_mode)
        if self.in_channels == 0:
            x = self.const.to(dtype)[None].expand(ws.shape[0], -1, -1, -1)  # (B, C, 4, 4)
            x = self.conv1(x, next(w_each), **layer)
        elif self.architecture == "resnet":
            x = x.to(dtype)
            # both branches scaled by sqrt(1/2): their sum keeps unit variance
            shortcut = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_each), **layer)
            x = shortcut + self.conv1(x, next(w_each), gain=math.sqrt(0.5), **layer)
        else:
            x = self.conv0(x.to(dtype), next(w_each), **layer)
            x = self.conv1(x, next(w_each), **layer)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_each), fused_modconv=fused_modconv).to(torch.float32)
            img = y if img is None else img + y  # the image accumulates in float32
        return x, img


class SynthesisNetwork(nn.Module):
    """ws (B, num_ws, w_dim) -> image (B, img_channels, img_resolution, img_resolution), float32.
    Channels per resolution: min(channel_base / R, channel_max)."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        **block_kwargs,
    ) -> None:
        if img_resolution < 4 or img_resolution & (img_resolution - 1):
            raise ValueError(f"img_resolution must be a power of 2, at least 4, got {img_resolution}")
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.img_resolution_log2 = int(math.log2(img_resolution))
        self.block_resolutions = [2**i for i in range(2, self.img_resolution_log2 + 1)]
        channels = {r: min(channel_base // r, channel_max) for r in self.block_resolutions}
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(
                channels[res // 2] if res > 4 else 0,
                channels[res],
                w_dim=w_dim,
                resolution=res,
                img_channels=img_channels,
                is_last=res == img_resolution,
                use_fp16=res >= fp16_resolution,
                **block_kwargs,
            )
            self.num_ws += block.num_conv + (block.num_torgb if res == img_resolution else 0)
            setattr(self, f"b{res}", block)

    def forward(
        self,
        ws: Tensor,
        noise_mode: str = "random",
        force_fp32: bool = False,
        fused_modconv: bool | None = None,
    ) -> Tensor:
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be (B, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        ws = ws.to(torch.float32)
        x = img = None
        start = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            # (B, num_conv + num_torgb, w_dim); the toRGB's w is the next block's first
            block_ws = ws.narrow(1, start, block.num_conv + block.num_torgb)
            x, img = block(
                x, img, block_ws, force_fp32=force_fp32, fused_modconv=fused_modconv, noise_mode=noise_mode
            )
            start += block.num_conv
        return img
