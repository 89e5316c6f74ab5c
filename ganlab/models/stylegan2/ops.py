"""The StyleGAN2-ADA primitives in plain PyTorch: FIR resampling, resampling convolution, bias with
activation, and the modulated (style) convolution.

Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020 (modulation and
demodulation, FIR up/down-sampling); Karras et al., "Training Generative Adversarial Networks with
Limited Data", NeurIPS 2020 (the StyleGAN2-ADA code whose numbers these reproduce).

An independent implementation: no custom CUDA plugin, nothing compiled. Every op is built from
``torch.nn.functional`` (conv2d, conv_transpose2d, pad), so autograd differentiates it to any
order: the path-length penalty's double backward goes through the modulated convolution.
Where the official layers add the bias, apply the activation and multiply by its gain as passes of
their own over the (B, C, H, W) activations, ganlab's fold the gain into the weights (the
activations used are positively homogeneous) and the bias into the last convolution or the
demodulation's multiply-add: the same numbers up to float rounding, fewer passes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

Padding = int | Sequence[int]


def setup_filter(
    taps: Sequence[float] | Tensor | None = (1, 3, 3, 1),
    normalize: bool = True,
    flip: bool = False,
    gain: float = 1.0,
    separable: bool | None = None,
) -> Tensor:
    """A float32 FIR filter from its taps: 1-D taps become their outer product (fh, fw), unless
    ``separable`` (by default: 8 taps or more) keeps them 1-D; ``normalize`` makes the taps sum to
    1, so a constant image keeps its value."""
    f = torch.as_tensor(1.0 if taps is None else taps, dtype=torch.float32)
    if f.ndim == 0:
        f = f.reshape(1)
    if f.ndim not in (1, 2) or f.numel() == 0:
        raise ValueError(
            f"a resampling filter has 1 or 2 dimensions and some taps, got shape {tuple(f.shape)}"
        )
    keep_1d = f.ndim == 1 and (separable if separable is not None else f.numel() >= 8)
    if f.ndim == 1 and not keep_1d:
        f = torch.outer(f, f)
    if normalize:
        f = f / f.sum()
    if flip:
        f = f.flip(list(range(f.ndim)))
    return f * gain ** (f.ndim / 2)


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _pads(padding: Padding) -> list[int]:
    """[left, right, top, bottom], the order ``F.pad`` wants for the last two dims."""
    if isinstance(padding, int):
        return [padding] * 4
    p = [int(v) for v in padding]
    return [p[0], p[0], p[1], p[1]] if len(p) == 2 else p


def filter_size(f: Tensor | None) -> tuple[int, int]:
    """(height, width) of a filter; 1-D taps are applied along both axes."""
    if f is None:
        return 1, 1
    return (f.shape[0], f.shape[-1]) if f.ndim == 2 else (f.shape[0], f.shape[0])


def upfirdn2d(
    x: Tensor,
    f: Tensor | None,
    up: int | Sequence[int] = 1,
    down: int | Sequence[int] = 1,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
) -> Tensor:
    """Upsample by zero insertion, pad (negative: crop), convolve each channel with the FIR
    filter ``f`` (a true convolution unless ``flip_filter``), keep every ``down``-th pixel.
    (B, C, H, W) -> (B, C, (H*up + pads - fh) // down + 1, ...)."""
    ux, uy = _pair(up)
    dx, dy = _pair(down)
    b, c, h, w = x.shape
    if ux > 1 or uy > 1:
        # (B, C, H, 1, W, 1) -> (B, C, H, uy, W, ux): each pixel followed by up-1 zeros per axis
        x = F.pad(x.reshape(b, c, h, 1, w, 1), [0, ux - 1, 0, 0, 0, uy - 1]).reshape(b, c, h * uy, w * ux)
    x = F.pad(x, _pads(padding))
    taps = torch.ones(1, 1, device=x.device) if f is None else f
    taps = (taps * gain ** (taps.ndim / 2)).to(x.dtype)
    if not flip_filter:
        taps = taps.flip(list(range(taps.ndim)))  # conv2d correlates; a convolution reverses the taps
    if taps.ndim == 2:
        x = F.conv2d(x, taps[None, None].repeat(c, 1, 1, 1), groups=c)
    else:  # separable: (C, 1, 1, n) along the rows, then (C, 1, n, 1) along the columns
        x = F.conv2d(x, taps[None, None, None, :].repeat(c, 1, 1, 1), groups=c)
        x = F.conv2d(x, taps[None, None, :, None].repeat(c, 1, 1, 1), groups=c)
    return x[:, :, ::dy, ::dx] if dx > 1 or dy > 1 else x


def upsample2d(x: Tensor, f: Tensor | None, up: int = 2) -> Tensor:
    """(B, C, H, W) -> (B, C, H*up, W*up), the FIR filter centred and scaled by up**2 (the
    zeros inserted would otherwise dim the image)."""
    fh, fw = filter_size(f)
    pads = [(fw + up - 1) // 2, (fw - up) // 2, (fh + up - 1) // 2, (fh - up) // 2]
    return upfirdn2d(x, f, up=up, padding=pads, gain=up * up)


def downsample2d(x: Tensor, f: Tensor | None, down: int = 2) -> Tensor:
    """(B, C, H, W) -> (B, C, H/down, W/down), low-pass filtered first."""
    fh, fw = filter_size(f)
    pads = [(fw - down + 1) // 2, (fw - down) // 2, (fh - down + 1) // 2, (fh - down) // 2]
    return upfirdn2d(x, f, down=down, padding=pads)


def _conv(
    x: Tensor,
    w: Tensor,
    correlate: bool,
    stride: int = 1,
    padding: Padding = 0,
    groups: int = 1,
    transposed: bool = False,
    bias: Tensor | None = None,
) -> Tensor:
    """``correlate=False`` reverses the kernel: a true convolution. conv2d correlates, while
    conv_transpose2d scatters each input pixel times the kernel, a true convolution already."""
    if correlate == transposed:
        w = w.flip([2, 3])
    if transposed:
        return F.conv_transpose2d(x, w, bias, stride=stride, groups=groups)
    return F.conv2d(x, w, bias, stride=stride, padding=padding, groups=groups)


def _for_transposed(w: Tensor, groups: int) -> Tensor:
    """conv2d's (O, I/g, kh, kw) kernel as conv_transpose2d's (I, O/g, kh, kw), group by group."""
    o, i, kh, kw = w.shape
    return w.reshape(groups, o // groups, i, kh, kw).transpose(1, 2).reshape(groups * i, o // groups, kh, kw)


def conv2d_resample(
    x: Tensor,
    w: Tensor,
    f: Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    groups: int = 1,
    flip_weight: bool = True,
    flip_filter: bool = False,
    bias: Tensor | None = None,
) -> Tensor:
    """The convolution of ``w`` (a correlation with ``flip_weight``, as conv2d) on the image
    upsampled by ``up`` (zeros, then the FIR ``f``) and low-passed and decimated by ``down``,
    plus ``bias`` (O,) per output channel. ``padding`` counts on the upsampled image. Each case
    takes the cheapest exact order; where a convolution is the last step it adds the bias (one
    pass over the output fewer, forward and backward)."""
    if bias is not None and up > 1:  # the FIR comes last: add the bias after it
        x = conv2d_resample(x, w, f, up, down, padding, groups, flip_weight, flip_filter)
        return x + bias.reshape(1, -1, 1, 1)
    kh, kw = w.shape[2:]
    fh, fw = filter_size(f)
    px0, px1, py0, py1 = _pads(padding)
    if up > 1:  # the FIR's reach on the zero-inserted image
        px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
        py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    if up > 1:
        if kh == kw == 1:  # a 1x1 kernel commutes with the resampling: convolve the small image
            x = _conv(x, w, flip_weight, groups=groups)
            x = upfirdn2d(x, f, up=up, padding=[px0, px1, py0, py1], gain=up * up, flip_filter=flip_filter)
        else:
            # conv_transpose2d = zero insertion + a full convolution: (H-1)*up + kh rows, of which
            # the kernel's extent (kh-1 before, kh-up after) is padding the FIR need not add again
            x = _conv(x, _for_transposed(w, groups), flip_weight, stride=up, groups=groups, transposed=True)
            pads = [px0 - (kw - 1), px1 - (kw - up), py0 - (kh - 1), py1 - (kh - up)]
            x = upfirdn2d(x, f, padding=pads, gain=up * up, flip_filter=flip_filter)
        return upfirdn2d(x, f, down=down, flip_filter=flip_filter) if down > 1 else x
    if down > 1:
        if kh == kw == 1:  # decimate first: the 1x1 kernel then sees a quarter of the pixels
            x = upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
            return _conv(x, w, flip_weight, groups=groups, bias=bias)
        x = upfirdn2d(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv(x, w, flip_weight, stride=down, groups=groups, bias=bias)
    if px0 == px1 and py0 == py1 and min(px0, py0) >= 0:
        return _conv(x, w, flip_weight, padding=(py0, px0), groups=groups, bias=bias)
    return _conv(F.pad(x, [px0, px1, py0, py1]), w, flip_weight, groups=groups, bias=bias)


# name -> (function of (x, alpha), default alpha, default gain). The gains keep unit variance
# through the nonlinearity (He et al.): sqrt(2) for the rectifiers and swish, 1 for the rest.
ACTIVATIONS: dict[str, tuple[Callable[[Tensor, float], Tensor], float, float]] = {
    "linear": (lambda x, a: x, 0.0, 1.0),
    "relu": (lambda x, a: F.relu(x), 0.0, math.sqrt(2)),
    "lrelu": (lambda x, a: F.leaky_relu(x, a), 0.2, math.sqrt(2)),
    "tanh": (lambda x, a: torch.tanh(x), 0.0, 1.0),
    "sigmoid": (lambda x, a: torch.sigmoid(x), 0.0, 1.0),
    "elu": (lambda x, a: F.elu(x), 0.0, 1.0),
    "selu": (lambda x, a: F.selu(x), 0.0, 1.0),
    "softplus": (lambda x, a: F.softplus(x), 0.0, 1.0),
    "swish": (lambda x, a: torch.sigmoid(x) * x, 0.0, math.sqrt(2)),
}


# act(g * x) = g * act(x) for every g > 0
_POSITIVELY_HOMOGENEOUS = frozenset({"linear", "relu", "lrelu"})


def folded_gain(act: str, gain: float) -> tuple[float, float]:
    """``gain`` (> 0) split into (the part a layer folds into its weights and bias, tiny tensors;
    the part ``bias_act`` multiplies the (B, C, H, W) output by): all of it is folded when ``act``
    is positively homogeneous, none otherwise."""
    return (gain, 1.0) if act in _POSITIVELY_HOMOGENEOUS else (1.0, gain)


def activation_gain(act: str) -> float:
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}: use one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[act][2]


def bias_act(
    x: Tensor,
    b: Tensor | None = None,
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
) -> Tensor:
    """x + b (b along ``dim``), the activation, times ``gain`` (default: the activation's), then
    clamped to [-clamp, clamp] (the float16 guard, applied whatever the dtype)."""
    fn, default_alpha, default_gain = ACTIVATIONS[act]
    if b is not None:
        x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = fn(x, float(default_alpha if alpha is None else alpha))
    g = float(default_gain if gain is None else gain)
    if g != 1:
        x = x * g
    return x if clamp is None else x.clamp(-clamp, clamp)


def normalize_2nd_moment(x: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """x / RMS(x) along ``dim``: latents and label embeddings on the unit sphere's scale."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def modulated_conv2d(
    x: Tensor,
    weight: Tensor,
    styles: Tensor,
    noise: Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    resample_filter: Tensor | None = None,
    demodulate: bool = True,
    flip_weight: bool = True,
    fused_modconv: bool = True,
    gain: float = 1,
    bias: Tensor | None = None,
) -> Tensor:
    """StyleGAN2's style convolution: ``weight`` (O, I, kh, kw) scaled per sample by ``styles``
    (B, I) along its inputs and, with ``demodulate``, each output filter renormalised to unit L2
    norm; x (B, I, H, W) -> (B, O, H', W'), plus ``noise`` ((B, 1, H', W') or (H', W')).
    ``fused_modconv``: one grouped convolution with per-sample kernels; otherwise the styles
    scale the activations around one shared convolution (the same numbers, cheaper for big
    batches in training). ganlab's ``gain`` and ``bias`` (O,): the output is ``gain * (conv +
    noise) + bias``, the scale folded into the demodulation's (B, O) coefficients (or the kernel)
    and the bias added by the demodulation's multiply-add or by the convolution itself (the
    official code multiplies and adds in passes of their own over the (B, O, H, W) output)."""
    b = x.shape[0]
    o, i, kh, kw = weight.shape
    if demodulate and x.dtype == torch.float16:
        # per-sample kernels can overflow float16; demodulation cancels any per-filter scale
        weight = weight * (1 / math.sqrt(i * kh * kw) / weight.abs().amax(dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.abs().amax(dim=1, keepdim=True)
    per_sample = weight[None] * styles[:, None, :, None, None] if fused_modconv else None  # (B, O, I, kh, kw)
    dcoefs = None
    if demodulate:
        # (B, O): 1 / ||per-sample filter||, so each output channel keeps unit variance. The squared
        # norm is sum_i s_i^2 sum_k w_oik^2: a (B, I) x (I, O) product, not a (B, O, I, kh, kw) tensor
        norms = styles.float().square() @ weight.float().square().sum(dim=[2, 3]).T
        dcoefs = (norms + 1e-8).rsqrt().to(weight.dtype)
    resample = dict(f=resample_filter, up=up, down=down, padding=padding, flip_weight=flip_weight)
    # (B, O) output scale: demodulation times gain; without demodulation the gain goes in the kernel
    scale = None if dcoefs is None else dcoefs * gain
    bias = None if bias is None else bias.to(x.dtype)
    if not fused_modconv:
        x = x * styles.to(x.dtype)[:, :, None, None]
        kernel = weight if scale is not None or gain == 1 else weight * gain
        x = conv2d_resample(x, kernel.to(x.dtype), bias=bias if scale is None else None, **resample)
        if scale is not None:
            scale = scale.to(x.dtype)[:, :, None, None]
            x = x * scale if bias is None else torch.addcmul(bias[None, :, None, None], x, scale)
    else:
        per_sample = per_sample * (gain if scale is None else scale[:, :, None, None, None])
        # the batch folded into channels: (1, B*I, H, W) against B groups of (O, I, kh, kw)
        kernels = per_sample.reshape(b * o, i, kh, kw).to(x.dtype)
        group_bias = None if bias is None else bias.repeat(b)  # (B*O,): the same bias for each sample
        x = conv2d_resample(x.reshape(1, b * i, *x.shape[2:]), kernels, groups=b, bias=group_bias, **resample)
        x = x.reshape(b, o, *x.shape[2:])
    if noise is None:
        return x
    # in place: no backward above needs its output
    return x.add_(noise.to(x.dtype) if gain == 1 else noise.to(x.dtype) * gain)
