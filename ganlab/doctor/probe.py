"""The doctor's device-side measurements, taken inside the training step on probe iterations.

Everything here stays on the device as 0-d tensors: the training module adds them to its
statistics (``ganlab.training.step_stats.StepStats``), which are read once per logging interval and averaged
over ranks in the same all-reduce as the losses. No host sync, no collective of its own.

Signals (the names they are logged under):
  doctor/r_train    E[sign D(x)] on a fixed slice of *training* images (D's view, un-augmented)
  doctor/r_v        E[sign D(x)] on the same number of *held-out* images D never trains on: the
                    overfitting signal of Karras et al. 2020 (ADA), sec. 2; r_train - r_v > 0
                    means D tells training images from unseen real ones, i.e. it memorises
  doctor/logit_train, doctor/logit_holdout   D's mean logit on each slice (> 0: judged real)
  doctor/g_grad_norm  the L2 norm of G's gradient at its latest update (vanishing gradients)
  doctor/diversity  mean pairwise distance between the iteration's fakes over that between its
                    reals, in pixels pooled to at most 16x16 (1: as varied as the data; mode
                    collapse drives it towards 0). Conditional runs: over the pairs of the same
                    class only (the fakes are drawn for the reals' labels), or a G drawing one
                    image per class would still look as varied as the data
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ganlab.losses.base import call_d, same_label_mean


def pairwise_distance(x: Tensor, labels: Tensor | None = None) -> Tensor:
    """Mean L2 distance between the distinct pairs of a batch (B, C, H, W), images average-pooled
    to at most 16x16 first (coarse structure, not pixel noise): a 0-d tensor. With ``labels``
    (B,), over the pairs of the same label only (all pairs when no two share one, as in a batch
    no larger than the number of classes); no host sync either way."""
    x = x.float()
    if x.shape[-1] > 16:
        x = F.adaptive_avg_pool2d(x, 16)
    flat = x.reshape(x.shape[0], -1)
    return same_label_mean(torch.cdist(flat, flat), labels)  # (B, B) distances, zero diagonal


class Probe:
    """Holds the fixed probe slices on the device and measures the signals above.

    ``sets``: ``GANDataModule.probe_sets`` (train and held-out images in [-1, 1], labels when
    conditional). D runs on them un-augmented, in its training mode (its BatchNorm normalises
    per batch, as in its updates) and without gradients, through the plain network (not its DDP
    wrapper: no communication). D on the slices is the probe's cost (2 x ``probe_size`` images
    through D: at a 128-image slice and batch 2, 3.5 ms, 140 us per iteration at a 25-iteration
    tick on this project's 2-core CPU), so it runs on every ``slices_every``-th probe only; the
    cheap signals (G's gradient, diversity) on every probe."""

    def __init__(self, sets: dict[str, Tensor | None], slices_every: int = 1) -> None:
        self.sets, self.slices_every = sets, slices_every
        self._device: torch.device | None = None

    def _on(self, module) -> dict[str, Tensor | None]:
        if self._device != module.device:
            self.sets = {
                k: None if v is None else v.to(module.device, non_blocking=True) for k, v in self.sets.items()
            }
            for k in ("train", "holdout"):
                if self.sets.get(k) is not None:
                    self.sets[k] = self.sets[k].contiguous(memory_format=module.memory_format)
            self._device = module.device
        return self.sets

    @torch.no_grad()
    def measure(
        self, module, real: Tensor, fake: Tensor, labels: Tensor | None, slices: bool = True
    ) -> dict[str, Tensor]:
        """``real``, ``fake``: the iteration's last real minibatch and its fakes (B, C, H, W);
        ``slices``: score D on the train and held-out slices too (r_train, r_v)."""
        sets = self._on(module)
        out: dict[str, Tensor] = {}
        pairwise = getattr(module.D, "pairwise", False)  # a pair D scores pairs, not images: no r_train/r_v
        if slices and not pairwise:
            # D's forward in training mode moves its buffers (BatchNorm's running statistics,
            # spectral norm's power-iteration vectors): put them back, so that the doctor only looks.
            buffers = list(module.D.buffers())
            saved = [b.clone() for b in buffers]
            for part, key in (("train", "train"), ("holdout", "v")):
                images = sets.get(part)
                if images is None:
                    continue
                logits, _ = call_d(module.D, images, sets.get(f"{part}_labels"))
                logits = logits.float()
                out[f"doctor/r_{key}"] = torch.sign(logits).mean()
                out[f"doctor/logit_{part}"] = logits.mean()
            for b, value in zip(buffers, saved):
                b.copy_(value)
        grads = [p.grad for p in module.G.parameters() if p.grad is not None]
        if grads:  # G's latest update's gradient (its optimizer keeps .grad until the next zero_grad)
            # (not nn.utils.get_total_norm: it moves the norms with .to(device), which the
            # no-host-sync check cannot tell from a copy to the host on a CPU)
            out["doctor/g_grad_norm"] = torch.stack([g.float().norm() for g in grads]).norm()
        # (the fakes are drawn for the reals' labels: the same pairs on both sides)
        spread_real = pairwise_distance(real, labels).clamp(min=1e-8)
        out["doctor/diversity"] = pairwise_distance(fake, labels) / spread_real
        return out
