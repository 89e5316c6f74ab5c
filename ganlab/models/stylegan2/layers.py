"""StyleGAN2-ADA's dense and convolution layers with equalised learning rate, and the mapping
network z, c -> w.

Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020; Karras et al.,
"Training Generative Adversarial Networks with Limited Data", NeurIPS 2020. An independent
implementation (no custom CUDA plugin; nothing compiled) whose parameter and buffer names and
constructor arguments are the official ones, so an official ``state_dict`` loads unchanged.

Equalised learning rate: weights are stored N(0, 1) / lr_multiplier and scaled at run time by
lr_multiplier / sqrt(fan_in), so Adam's per-parameter step is the same for every layer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.models.stylegan2.ops import (
    activation_gain,
    bias_act,
    conv2d_resample,
    folded_gain,
    normalize_2nd_moment,
    setup_filter,
)


def class_condition(c: Tensor | None, c_dim: int) -> Tensor:
    """The official conditioning, float (B, c_dim), from itself or from ganlab's integer class
    labels (B,). One-hot by comparison, not ``F.one_hot`` (which reads the labels' range on the
    host): no host sync; a label outside [0, c_dim) gives an all-zero row."""
    if c is None:
        raise ValueError(
            f"this StyleGAN2 network is class-conditional (c_dim={c_dim}): pass c, one-hot "
            f"(B, {c_dim}), or class labels (B,)"
        )
    if c.ndim == 1 and not c.is_floating_point():
        return (c[:, None] == torch.arange(c_dim, device=c.device)).to(torch.float32)
    if c.ndim != 2 or c.shape[1] != c_dim:
        raise ValueError(f"c has shape {tuple(c.shape)}: expected (B, {c_dim}) one-hot or (B,) class labels")
    return c.to(torch.float32)


class FullyConnectedLayer(nn.Module):
    """y = act(x W^T * gain + b * lr_multiplier); W (out, in)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1,
        bias_init: float = 0,
    ) -> None:
        super().__init__()
        self.activation = activation
        activation_gain(activation)  # an unknown name fails here, not at the first forward
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = None if self.bias is None else self.bias.to(x.dtype) * self.bias_gain
        if self.activation == "linear":
            return F.linear(x, w, b)
        return bias_act(F.linear(x, w), b, act=self.activation)


class Conv2dLayer(nn.Module):
    """Convolution with optional FIR up/down-sampling by 2, bias, activation and clamp.
    ``trainable=False`` (Freeze-D) keeps weight and bias as buffers under the same names."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,
        down: int = 1,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        channels_last: bool = False,
        trainable: bool = True,
    ) -> None:
        super().__init__()
        self.activation = activation
        self.up, self.down = up, down
        self.conv_clamp = conv_clamp
        self.channels_last = channels_last  # a memory-layout hint only: the numbers do not change
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = activation_gain(activation)
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size])
        b = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = nn.Parameter(weight)
            self.bias = nn.Parameter(b) if b is not None else None
        else:
            self.register_buffer("weight", weight)
            self.register_buffer("bias", b)

    def forward(self, x: Tensor, gain: float = 1) -> Tensor:
        # act(g * (conv + b)) = g * act(conv + b): the gain in the weights and bias where it can be
        fold, rest = folded_gain(self.activation, self.act_gain * gain)
        w = (self.weight * (self.weight_gain * fold)).to(x.dtype)
        b = None if self.bias is None else (self.bias * fold).to(x.dtype)
        # a plain layer correlates (as conv2d); an upsampling one convolves (as the transpose)
        x = conv2d_resample(
            x, w, self.resample_filter, self.up, self.down, self.padding, flip_weight=self.up == 1, bias=b
        )
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        return bias_act(x, act=self.activation, gain=rest, clamp=clamp)


class MappingNetwork(nn.Module):
    """z (B, z_dim), c -> w (B, w_dim), broadcast to (B, num_ws, w_dim) unless ``num_ws`` is None.
    z and the embedded label are each normalised to unit second moment and concatenated; the
    running mean of w (``w_avg``) is the centre the truncation trick pulls toward."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int | None,
        num_layers: int = 8,
        embed_features: int | None = None,
        layer_features: int | None = None,
        activation: str = "lrelu",
        lr_multiplier: float = 0.01,
        w_avg_beta: float | None = 0.995,
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.num_ws, self.num_layers, self.w_avg_beta = num_ws, num_layers, w_avg_beta
        embed = 0 if c_dim == 0 else (w_dim if embed_features is None else embed_features)
        hidden = w_dim if layer_features is None else layer_features
        widths = [z_dim + embed] + [hidden] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(
                widths[idx], widths[idx + 1], activation=activation, lr_multiplier=lr_multiplier
            )
            setattr(self, f"fc{idx}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def _features(self, z: Tensor | None, c: Tensor | None) -> Tensor:
        parts = []
        if self.z_dim > 0:
            if z is None or z.ndim != 2 or z.shape[1] != self.z_dim:
                raise ValueError(f"z must be (B, {self.z_dim}), got {None if z is None else tuple(z.shape)}")
            parts.append(normalize_2nd_moment(z.to(torch.float32)))
        if self.c_dim > 0:
            parts.append(normalize_2nd_moment(self.embed(class_condition(c, self.c_dim))))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def forward(
        self,
        z: Tensor | None,
        c: Tensor | None = None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        skip_w_avg_update: bool = False,
        truncation_center: Tensor | None = None,
    ) -> Tensor:
        """``truncation_center`` (B, w_dim), a ganlab extension: the ws are pulled toward it
        instead of ``w_avg`` (each sample's class mean: ``ganlab.models.truncation.class_centers``)."""
        x = self._features(z, c)
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if self.w_avg_beta is not None and self.training and not skip_w_avg_update:
            # w_avg <- beta * w_avg + (1 - beta) * batch mean, outside autograd
            self.w_avg.copy_(torch.lerp(x.detach().mean(dim=0), self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x[:, None, :].expand(-1, self.num_ws, -1)  # (B, num_ws, w_dim): one w per layer input
        if truncation_psi != 1:
            if self.w_avg_beta is None and truncation_center is None:
                raise ValueError(
                    "truncation needs w_avg: this mapping network was built with w_avg_beta=None"
                )
            center = self.w_avg if truncation_center is None else truncation_center.to(x.dtype)
            if center.dim() == 2 and self.num_ws is not None:
                center = center[:, None, :]  # (B, 1, w_dim): the same centre for every w
            pulled = torch.lerp(center, x, truncation_psi)
            if self.num_ws is None or truncation_cutoff is None:
                x = pulled
            else:  # only the first truncation_cutoff ws (the coarse layers) are pulled
                x = torch.cat([pulled[:, :truncation_cutoff], x[:, truncation_cutoff:]], dim=1)
        return x.contiguous()


class ReducedPrecision:
    """A block that may run in reduced precision: ``use_fp16`` (the official flag, set for the
    ``num_fp16_res`` highest resolutions) takes effect on CUDA only, in ``low_precision_dtype``
    (bfloat16 unless the owning network's ``low_precision_dtype`` is set to float16); on the
    CPU every block computes in float32."""

    use_fp16: bool = False
    low_precision_dtype: torch.dtype = torch.bfloat16

    def compute_dtype(self, device: torch.device, force_fp32: bool = False) -> torch.dtype:
        if self.use_fp16 and not force_fp32 and device.type == "cuda":
            return self.low_precision_dtype
        return torch.float32
