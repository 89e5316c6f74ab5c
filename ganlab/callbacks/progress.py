"""A progress line in GAN units whose cost does not grow with the iteration rate.

Lightning's tqdm bar formats and writes on every batch (``refresh_rate=1``), which at thousands of
iterations per second is milliseconds of host time each. This one looks at the clock once per
iteration; the losses it shows are the ones the training module last logged
(``trainer.callback_metrics``), so it never reads a tensor from the device itself.

On a terminal it redraws one line in place at most every ``refresh_seconds``. Piped to a file (a
batch job's log) it writes stylegan2-ada's tick lines instead: one per ``tick_kimg`` thousand real
images, or per ``tick_seconds`` when that comes first, each with the elapsed time and peak memory.
"""

from __future__ import annotations

import math
import resource
import sys
import time

import torch
from lightning.pytorch.callbacks import ProgressBar

from ganlab.training.schedule import planned_iterations
from ganlab.utils.durations import duration


def peak_memory(device: torch.device) -> str:
    """Peak resident memory of this process, and the device's peak allocation on a GPU."""
    cpu = f"cpumem {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB"  # ru_maxrss: KiB
    if device.type == "cuda":
        return f"{cpu}  gpumem {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GB"
    return cpu


class GANProgressBar(ProgressBar):
    """``it 1200/5000  kimg 153.6/640.0  sec/kimg 0.21  4790 img/s  ETA 0:01:42  time 0:00:31
    cpumem 1.31 GB  loss_d 1.204  loss_g 0.934  d_acc 0.71``: kimg are thousands of real images
    shown to D (all ranks), as stylegan2-ada counts training length. Written by rank 0 only."""

    def __init__(
        self, refresh_seconds: float = 1.0, tick_kimg: float = 4.0, tick_seconds: float = 30.0
    ) -> None:
        super().__init__()
        self.refresh_seconds, self.tick_kimg, self.tick_seconds = refresh_seconds, tick_kimg, tick_seconds
        self._enabled = True
        self._next = self._t0 = self._last_tick_time = 0.0
        self._images0 = self._tick = 0
        self._last_written = -1  # the iteration of the last line written
        self._tty = sys.stdout.isatty()

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def is_enabled(self) -> bool:
        return self._enabled and self.trainer.is_global_zero

    def on_train_start(self, trainer, pl_module) -> None:
        self._t0 = self._last_tick_time = time.monotonic()
        self._next = self._t0 + self.refresh_seconds
        self._images0 = pl_module.progress.images_seen
        self._tick = int(self._images0 // (self.tick_kimg * 1000)) if self.tick_kimg else 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self.is_enabled:
            return
        now = time.monotonic()
        if self._tty:
            if now >= self._next:
                self._next = now + self.refresh_seconds
                self._write(trainer, pl_module, now, final=False)
            return
        tick = (
            int(pl_module.progress.images_seen // (self.tick_kimg * 1000)) if self.tick_kimg else self._tick
        )
        if tick > self._tick or now - self._last_tick_time >= self.tick_seconds:
            self._tick, self._last_tick_time = tick, now
            self._write(trainer, pl_module, now, final=False)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.is_enabled and (self._tty or pl_module.progress.iterations != self._last_written):
            self._write(trainer, pl_module, time.monotonic(), final=True)

    def line(self, trainer, module, now: float) -> str:
        progress = module.progress
        it, images = progress.iterations, progress.images_seen
        rate = (images - self._images0) / max(now - self._t0, 1e-9)  # images/s since this run began
        total_it = planned_iterations(trainer, progress.last_images)
        parts = [f"it {it}" + (f"/{int(total_it)}" if math.isfinite(total_it) else "")]
        kimg = images / 1000
        per_it = images / it if it else 0
        total_kimg = total_it * per_it / 1000 if math.isfinite(total_it) else math.inf
        parts.append(f"kimg {kimg:.1f}" + (f"/{total_kimg:.1f}" if math.isfinite(total_kimg) else ""))
        if rate > 0:
            parts += [f"sec/kimg {1000 / rate:.2f}", f"{rate:.0f} img/s"]
            parts.append(f"ETA {duration((total_kimg - kimg) * 1000 / rate)}")
        parts += [f"time {duration(now - self._t0)}", peak_memory(module.device)]
        metrics = trainer.callback_metrics
        for name in ("loss_d", "loss_g", "d_acc"):
            v = metrics.get(f"train/{name}")
            if v is not None:
                parts.append(f"{name} {float(v):.3f}")
        held = module.history.conditions  # the training doctor's, while they hold
        parts += [f"[doctor: {','.join(held)}]"] if held else []
        return "  ".join(parts)

    def _write(self, trainer, module, now: float, final: bool) -> None:
        text = self.line(trainer, module, now)
        self._last_written = module.progress.iterations
        if self._tty:
            sys.stdout.write("\r" + text.ljust(110) + ("\n" if final else ""))
        else:
            sys.stdout.write(text + "\n")
        sys.stdout.flush()
