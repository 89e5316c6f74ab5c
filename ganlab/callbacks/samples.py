"""The sample grids: the same fixed latents rendered on a GAN-iteration cadence (``callbacks.samples``)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from ganlab.utils.every_n import due_at
from ganlab.utils.images import save_grid

log = logging.getLogger(__name__)


class SampleGrid(L.Callback):
    """G(fixed_z) as a PNG grid every ``every_n_iterations`` (or ``every_kimg``) and, with
    ``every_epoch``, at the end of each epoch, written to ``<dirpath>/it{iteration:07d}.png`` (and
    ``latest.png``) and sent to W&B.

    The fixed noise lives in the module (a checkpointed buffer), so a resumed run keeps
    drawing the same latents and the grids form one comparable sequence.
    """

    def __init__(
        self,
        dirpath: str,
        every_n_iterations: int = 500,
        every_kimg: float | None = None,
        every_epoch: bool = True,
    ) -> None:
        self.dirpath, self.every_n_iterations, self.every_kimg = Path(dirpath), every_n_iterations, every_kimg
        self.every_epoch = every_epoch
        self._last = -1

    @rank_zero_only
    def write(self, trainer: L.Trainer, module) -> Path | None:
        it = module.progress.iterations
        if it == self._last:
            return None
        self._last = it
        images = module.generate(module.fixed_z, module.fixed_y)  # (N, C, H, W) in [-1, 1]
        self.dirpath.mkdir(parents=True, exist_ok=True)
        path = self.dirpath / f"it{it:07d}.png"
        grid = save_grid(images, module.grid_columns, path)  # (3, H', W') uint8
        shutil.copyfile(path, self.dirpath / "latest.png")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                # uint8 (H, W, 3): wandb.Image reads float arrays as 0-255, so a [0, 1] grid is black.
                logger.log_image(
                    key="samples/fixed_noise", images=[grid.permute(1, 2, 0).numpy()], step=it,
                    caption=[f"iteration {it}"],
                )  # fmt: skip
            elif isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("samples/fixed_noise", grid, global_step=it)
        return path

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if due_at(module.progress, self.every_n_iterations, self.every_kimg):
            self.write(trainer, module)

    def on_train_epoch_end(self, trainer, module) -> None:
        if self.every_epoch:
            self.write(trainer, module)
