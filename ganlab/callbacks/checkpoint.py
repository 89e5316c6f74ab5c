"""Checkpoints on a GAN-iteration cadence (``callbacks.checkpoint``)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.trainer.states import TrainerFn

from ganlab.utils.every_n import due, due_at

log = logging.getLogger(__name__)


class GANCheckpoint(Checkpoint):
    """Checkpoints on a GAN cadence: every ``every_n_iterations`` GAN iterations, every
    ``every_kimg`` thousand real images, every ``every_minutes`` of wall time (long iterations,
    preemptible machines; rank 0's clock decides, checked every 10 iterations under DDP with one
    small broadcast), and at the end of each epoch (``every_epoch``). Each save writes
    ``<dirpath>/<filename>.ckpt`` (``{iteration}`` in the name; every snapshot kept: GAN quality
    often peaks, then collapses) and ``last.ckpt``, through ``trainer.save_checkpoint`` (atomic:
    ``ganlab.checkpoint.io.AtomicCheckpointIO``). Repeated saves are recognised by iteration
    (``global_step`` counts optimizer steps and stands still on iterations whose updates are all
    skipped)."""

    def __init__(
        self,
        dirpath: str,
        filename: str = "it{iteration:07d}",
        every_n_iterations: int = 0,
        every_kimg: float | None = None,
        every_minutes: float | None = None,
        every_epoch: bool = True,
        save_last: bool = True,
    ) -> None:
        self.dirpath, self.filename, self.save_last = Path(dirpath), filename, save_last
        self.every_n_iterations, self.every_kimg, self.every_minutes = (
            every_n_iterations,
            every_kimg,
            every_minutes,
        )
        self.every_epoch = every_epoch
        self.last_model_path = ""  # the newest file written by this run
        self._last_iteration_saved = 0  # nothing to save before the first iteration
        self._last_time = time.monotonic()

    def on_train_start(self, trainer, pl_module) -> None:
        self._last_time = time.monotonic()

    def _time_due(self, trainer, iteration: int) -> bool:
        if not self.every_minutes:
            return False
        if trainer.world_size > 1 and not due(10, iteration):
            return False
        late = time.monotonic() - self._last_time >= self.every_minutes * 60
        return bool(trainer.strategy.broadcast(late)) if trainer.world_size > 1 else late

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        progress = pl_module.progress
        if due_at(progress, self.every_n_iterations, self.every_kimg) or self._time_due(
            trainer, progress.iterations
        ):
            self.save_now(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.every_epoch:
            self.save_now(trainer)

    def save_now(self, trainer) -> None:
        """The iteration's checkpoint and ``last.ckpt``, now (also for ``ganlab.callbacks.preemption``); a
        later save at the same iteration (the epoch end) is then skipped. Every rank calls it:
        saving is collective (the RNG states of all ranks are gathered)."""
        it = trainer.lightning_module.progress.iterations
        if trainer.fast_dev_run or trainer.state.fn != TrainerFn.FITTING or it == self._last_iteration_saved:
            return
        path = self.dirpath / f"{self.filename.format(iteration=it)}.ckpt"
        trainer.lightning_module.history.record_checkpoint(str(path), it)  # before: it holds its own entry
        trainer.save_checkpoint(path)
        if self.save_last:
            trainer.save_checkpoint(self.dirpath / "last.ckpt")
        self.last_model_path = str(self.dirpath / "last.ckpt" if self.save_last else path)
        self._last_iteration_saved, self._last_time = it, time.monotonic()
