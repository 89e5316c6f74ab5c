"""The exponential moving average of G's weights (Karras et al. 2018, "Progressive Growing of
GANs", sec. 4.1; the half-life form of Karras et al. 2020, StyleGAN2-ADA's ``ema_kimg``).

``G_ema <- G_ema + w (G - G_ema)`` after each G update, ``w = 1 - 0.5 ** (batch / half-life)``
with the half-life in images, ramped up as ``min(half_life, images_seen * rampup)`` so that the
first averages are not dominated by the random initialisation. Buffers (BatchNorm statistics)
are copied. One object serves the eager step (``w`` a Python float) and the CUDA-graph step
(``w`` a 0-d device tensor, refilled before each replay): with a tensor weight the update is
arithmetic on the tensor lists, which never reads ``w`` on the host (``torch._foreach_lerp_``
takes a Scalar and would read a tensor with ``.item()``, a host sync that a capture forbids).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class EMA:
    def __init__(self, half_life_kimg: float, rampup: float | None = 0.05) -> None:
        # (model.ema_half_life_kimg > 0 and the ramp-up are checked before training: ganlab.run.checks)
        self.half_life_kimg, self.rampup = half_life_kimg, rampup
        self._lists: tuple[list[Tensor], ...] = ()

    def weight(self, images_seen: int, batch_images: int) -> float:
        """``w`` of one update after ``images_seen`` images, for a G batch of ``batch_images``."""
        half_life = self.half_life_kimg * 1000
        if self.rampup is not None:
            half_life = min(half_life, images_seen * self.rampup)
        return 1.0 - 0.5 ** (batch_images / max(half_life, 1e-8))

    @torch.no_grad()
    def update(self, ema: nn.Module, net: nn.Module, weight: float | Tensor) -> None:
        """One step of ``ema`` towards ``net``. Same on every rank, as ``net`` is."""
        if not self._lists:  # listed once: no walk over the parameters per iteration
            self._lists = (
                list(ema.parameters()),
                list(net.parameters()),
                list(ema.buffers()),
                list(net.buffers()),
            )
        ema_params, params, ema_buffers, buffers = self._lists
        if isinstance(weight, Tensor):
            step = torch._foreach_sub(params, ema_params)  # G - G_ema
            torch._foreach_mul_(step, weight)  # * w, a 0-d tensor: no host read
            torch._foreach_add_(ema_params, step)
        else:
            torch._foreach_lerp_(ema_params, params, weight)
        if buffers:
            torch._foreach_copy_(ema_buffers, buffers)

    def forget(self) -> None:
        """After the networks' tensors were replaced (a rollback's ``load_state_dict`` keeps them,
        ``to()`` may not): list them again at the next update."""
        self._lists = ()
