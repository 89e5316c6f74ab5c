"""StyleGAN2-ADA's generator and discriminator as ganlab networks.

Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020; Karras et al.,
"Training Generative Adversarial Networks with Limited Data", NeurIPS 2020. An independent
implementation in plain PyTorch (no custom CUDA plugin; nothing compiled) of the networks of
NVlabs/stylegan2-ada-pytorch: the same constructor arguments, submodule, parameter and buffer
names, so the official ``state_dict`` loads with ``strict=True`` and the outputs match the
official ones to float32 rounding (checked against its reference outputs in the tests).

ganlab's additions, off by default: integer class labels (B,) wherever ``c`` is taken, style
mixing inside ``G.forward`` (``style_mixing_prob``) and ``return_ws`` for the path-length
penalty. Mixed precision (``num_fp16_res``) applies on CUDA only, in bfloat16 unless
``low_precision_dtype`` is set to ``torch.float16``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ganlab.models.base import Discriminator, Generator
from ganlab.models.stylegan2.discriminator import DiscriminatorBlock, DiscriminatorEpilogue
from ganlab.models.stylegan2.layers import MappingNetwork, ReducedPrecision
from ganlab.models.stylegan2.synthesis import SynthesisNetwork

LOW_PRECISION_DTYPES = (torch.bfloat16, torch.float16, torch.float32)


class _PrecisionSetting:
    """``low_precision_dtype``: the dtype of the blocks flagged ``use_fp16`` when on CUDA; setting
    it on the network sets it on each of them (the training code may set it after building)."""

    @property
    def low_precision_dtype(self) -> torch.dtype:
        return self.__dict__.get("_low_precision_dtype", torch.bfloat16)

    @low_precision_dtype.setter
    def low_precision_dtype(self, dtype: torch.dtype) -> None:
        if dtype not in LOW_PRECISION_DTYPES:
            raise ValueError(f"low_precision_dtype must be one of {LOW_PRECISION_DTYPES}, got {dtype}")
        for module in self.modules():
            if isinstance(module, ReducedPrecision):
                module.low_precision_dtype = dtype
        self.__dict__["_low_precision_dtype"] = dtype


class StyleGAN2Generator(_PrecisionSetting, Generator):
    """z (B, z_dim), c -> images (B, img_channels, img_resolution, img_resolution), about [-1, 1]
    (not clamped). ``c``: one-hot float (B, c_dim), or integer class labels (B,); None (or
    (B, 0)) when ``c_dim == 0``."""

    style_based = True

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        mapping_kwargs: dict[str, Any] | None = None,
        synthesis_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.nz, self.image_size, self.channels, self.num_classes = z_dim, img_resolution, img_channels, c_dim
        self.synthesis = SynthesisNetwork(
            w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels, **(synthesis_kwargs or {})
        )
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **(mapping_kwargs or {})
        )

    def _mix_styles(self, z: Tensor, c: Tensor | None, ws: Tensor, prob: float, **truncation) -> Tensor:
        """With probability ``prob`` (one coin for the batch), the ws from a random cutoff in
        [1, num_ws) on come from a second latent: every draw is on the device, no host sync."""
        ws2 = self.mapping(torch.randn_like(z), c, skip_w_avg_update=True, **truncation)
        cutoff = torch.randint(1, self.num_ws, (), device=ws.device)
        # no mixing: a cutoff past the last w
        cutoff = torch.where(
            torch.rand((), device=ws.device) < prob, cutoff, torch.full_like(cutoff, self.num_ws)
        )
        later = torch.arange(self.num_ws, device=ws.device)[None, :, None] >= cutoff  # (1, num_ws, 1)
        return torch.where(later, ws2, ws)

    def forward(
        self,
        z: Tensor,
        c: Tensor | None = None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        noise_mode: str = "random",
        style_mixing_prob: float = 0.0,
        return_ws: bool = False,
        truncation_center: Tensor | None = None,
        **synthesis_kwargs,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """``synthesis_kwargs``: ``force_fp32``, ``fused_modconv`` (the official ones).
        ``return_ws``: (img, ws), img made from that very ws (B, num_ws, w_dim), so that
        ``torch.autograd.grad(f(img), ws)`` works (the path-length penalty).
        ``truncation_center`` (B, w_dim): truncate toward it instead of ``w_avg`` (ganlab's)."""
        truncation = dict(
            truncation_psi=truncation_psi,
            truncation_cutoff=truncation_cutoff,
            truncation_center=truncation_center,
        )
        ws = self.mapping(z, c, **truncation)
        if style_mixing_prob > 0 and self.num_ws > 1:
            ws = self._mix_styles(z, c, ws, style_mixing_prob, **truncation)
        img = self.synthesis(ws, noise_mode=noise_mode, **synthesis_kwargs)
        return (img, ws) if return_ws else img


class StyleGAN2Discriminator(_PrecisionSetting, Discriminator):
    """images (B, img_channels, R, R), c -> logits (B, 1). ``c``: one-hot float (B, c_dim) or
    integer class labels (B,), projected through D's own mapping network (``mapping``, z_dim 0)
    onto a (B, cmap_dim) label map; None when ``c_dim == 0``."""

    def __init__(
        self,
        c_dim: int,
        img_resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        conv_clamp: float | None = None,
        cmap_dim: int | None = None,
        block_kwargs: dict[str, Any] | None = None,
        mapping_kwargs: dict[str, Any] | None = None,
        epilogue_kwargs: dict[str, Any] | None = None,
        aux_classifier: bool = False,
    ) -> None:
        """The official arguments, and ``aux_classifier`` (ganlab's): an ACGAN head beside the
        projection, trained by ``loss.acgan_weight``; D then returns (B, 1 + c_dim)."""
        super().__init__()
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        self.image_size, self.channels, self.num_classes = img_resolution, img_channels, c_dim
        self.aux_classes, self.pairwise = (c_dim if aux_classifier else 0), False
        self.img_resolution_log2 = img_resolution.bit_length() - 1
        if img_resolution < 4 or img_resolution & (img_resolution - 1):
            raise ValueError(f"img_resolution must be a power of 2, at least 4, got {img_resolution}")
        self.block_resolutions = [2**i for i in range(self.img_resolution_log2, 2, -1)]
        channels = {r: min(channel_base // r, channel_max) for r in self.block_resolutions + [4]}
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)
        cmap_dim = 0 if c_dim == 0 else (channels[4] if cmap_dim is None else cmap_dim)
        common = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        layer_idx = 0
        for res in self.block_resolutions:
            block = DiscriminatorBlock(
                channels[res] if res < img_resolution else 0,
                channels[res],
                channels[res // 2],
                resolution=res,
                first_layer_idx=layer_idx,
                use_fp16=res >= fp16_resolution,
                **(block_kwargs or {}),
                **common,
            )
            setattr(self, f"b{res}", block)
            layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(
                z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None, **(mapping_kwargs or {})
            )
        epilogue = {"aux_classes": self.aux_classes, **(epilogue_kwargs or {}), **common}
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim=cmap_dim, resolution=4, **epilogue)

    def forward(self, img: Tensor, c: Tensor | None = None, force_fp32: bool = False) -> Tensor:
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img, force_fp32=force_fp32)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None  # (B, cmap_dim)
        return self.b4(x, img, cmap)
