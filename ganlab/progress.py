"""A progress line in GAN units whose cost does not grow with the iteration rate.

Lightning's tqdm bar formats and writes on every batch (``refresh_rate=1``), which at thousands of
iterations per second is milliseconds of host time each. This bar looks at the clock once per
iteration and writes at most once every ``refresh_seconds``; the losses it shows are the ones the
training module last logged (``trainer.callback_metrics``), so it never reads a tensor from the
device itself.
"""

from __future__ import annotations

import math
import sys
import time

from lightning.pytorch.callbacks import ProgressBar

from ganlab.runlength import planned_iterations


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class GANProgressBar(ProgressBar):
    """``it 1200/5000  kimg 153.6/640.0  sec/kimg 0.21  4790 img/s  ETA 0:01:42  loss_d 1.204
    loss_g 0.934  d_acc 0.71``: kimg are thousands of real images shown to D (all ranks), as
    stylegan2-ada counts training length. Written by rank 0 only; in place (``\\r``) on a terminal,
    one line per refresh otherwise (logs of batch jobs)."""

    def __init__(self, refresh_seconds: float = 1.0) -> None:
        super().__init__()
        self.refresh_seconds = refresh_seconds
        self._enabled = True
        self._next = 0.0
        self._t0 = 0.0
        self._images0 = 0
        self._tty = sys.stdout.isatty()

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def is_enabled(self) -> bool:
        return self._enabled and self.trainer.is_global_zero

    def on_train_start(self, trainer, pl_module) -> None:
        self._t0 = time.monotonic()
        self._next = self._t0 + self.refresh_seconds
        self._images0 = pl_module.progress.images_seen

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.monotonic()
        if now < self._next or not self.is_enabled:
            return
        self._next = now + self.refresh_seconds
        self._write(self.line(trainer, pl_module, now), final=False)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.is_enabled:
            self._write(self.line(trainer, pl_module, time.monotonic()), final=True)

    def line(self, trainer, module, now: float) -> str:
        it, images = module.progress.iterations, module.progress.images_seen
        rate = (images - self._images0) / max(now - self._t0, 1e-9)  # images/s since this run began
        total_it = planned_iterations(trainer, module.progress.last_images)
        parts = [f"it {it}" + (f"/{int(total_it)}" if math.isfinite(total_it) else "")]
        kimg = images / 1000
        per_it = images / it if it else 0
        total_kimg = total_it * per_it / 1000 if math.isfinite(total_it) else math.inf
        parts.append(f"kimg {kimg:.1f}" + (f"/{total_kimg:.1f}" if math.isfinite(total_kimg) else ""))
        if rate > 0:
            parts += [f"sec/kimg {1000 / rate:.2f}", f"{rate:.0f} img/s"]
            parts.append(f"ETA {_duration((total_kimg - kimg) * 1000 / rate)}")
        metrics = trainer.callback_metrics
        for name in ("loss_d", "loss_g", "d_acc"):
            v = metrics.get(f"train/{name}")
            if v is not None:
                parts.append(f"{name} {float(v):.3f}")
        return "  ".join(parts)

    def _write(self, text: str, final: bool) -> None:
        if self._tty:
            sys.stdout.write("\r" + text.ljust(110) + ("\n" if final else ""))
        else:
            sys.stdout.write(text + "\n")
        sys.stdout.flush()
