"""Callbacks: fixed-noise sample grids, and checkpoints on a GAN-iteration cadence."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_only
from torchvision.utils import make_grid, save_image


class SampleGrid(L.Callback):
    """G(fixed_z) as a PNG grid every ``every_n_iterations`` and at the end of each epoch,
    written to ``<dirpath>/it{iteration:07d}.png`` (and ``latest.png``) and sent to W&B.

    The fixed noise lives in the module (a checkpointed buffer), so a resumed run keeps
    drawing the same latents and the grids form one comparable sequence.
    """

    def __init__(self, dirpath: str, every_n_iterations: int = 500) -> None:
        self.dirpath, self.every_n_iterations = Path(dirpath), every_n_iterations
        self._last = -1

    @rank_zero_only
    def write(self, trainer: L.Trainer, module) -> Path | None:
        it = module.iterations
        if it == self._last:
            return None
        self._last = it
        images = module.generate(module.fixed_z)  # (N, C, H, W) in [-1, 1]
        grid = make_grid(images, nrow=module.grid_rows, normalize=True, value_range=(-1, 1))
        self.dirpath.mkdir(parents=True, exist_ok=True)
        path = self.dirpath / f"it{it:07d}.png"
        save_image(grid, path)
        save_image(grid, self.dirpath / "latest.png")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(
                    key="samples/fixed_noise", images=[grid], step=None, caption=[f"iteration {it}"]
                )
        return path

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self.every_n_iterations > 0 and module.iterations % self.every_n_iterations == 0:
            self.write(trainer, module)

    def on_train_epoch_end(self, trainer, module) -> None:
        self.write(trainer, module)


class GANCheckpoint(ModelCheckpoint):
    """ModelCheckpoint that counts GAN iterations, not ``global_step`` (which rises by two per
    iteration with two optimizers, and unevenly with ``d_every``/``g_every``).

    The filename may use ``{iteration}``. Lightning writes each file atomically (to a
    temporary file, then moved into place), so an interrupted save never leaves a torn file.
    Repeated saves are recognised by iteration too: ``global_step`` stands still on iterations
    whose updates are all skipped (``g_every``, adaptive D skipping), and the base class would
    then drop the end-of-epoch checkpoint as "already saved".
    """

    def __init__(self, every_n_iterations: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.every_n_iterations = every_n_iterations
        self._last_iteration_saved = 0  # nothing to save before the first iteration

    def _should_skip_saving_checkpoint(self, trainer) -> bool:
        if trainer.fast_dev_run or trainer.state.fn != TrainerFn.FITTING or trainer.sanity_checking:
            return True
        return self._last_iteration_saved == getattr(trainer.lightning_module, "iterations", 0)

    def _save_checkpoint(self, trainer, filepath: str) -> None:
        super()._save_checkpoint(trainer, filepath)
        self._last_iteration_saved = getattr(trainer.lightning_module, "iterations", 0)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        n = self.every_n_iterations
        if n < 1 or pl_module.iterations % n != 0 or self._should_skip_saving_checkpoint(trainer):
            return
        candidates = self._monitor_candidates(trainer)
        self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)

    def _monitor_candidates(self, trainer):
        candidates = super()._monitor_candidates(trainer)
        candidates["iteration"] = torch.tensor(getattr(trainer.lightning_module, "iterations", 0))
        return candidates
