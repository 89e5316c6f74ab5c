"""Run length in GAN units (kimg, iterations): ``callbacks.run_length``, set by
``train.max_kimg`` / ``train.max_iterations``."""

from __future__ import annotations

import logging
import math

import lightning as L

log = logging.getLogger(__name__)


class RunLength(L.Callback):
    """Run length in GAN units: stop after ``max_kimg`` thousand real images shown to D (all
    ranks; stylegan2-ada's unit) or ``max_iterations`` GAN iterations, whichever comes first
    (None: no limit; Lightning's ``trainer.max_epochs``/``max_steps`` still apply too). Both are
    checked before training (``ganlab.run.checks``)."""

    def __init__(self, max_kimg: float | None = None, max_iterations: int | None = None) -> None:
        self.max_kimg, self.max_iterations = max_kimg, max_iterations
        self.checked = False

    def reached(self, module) -> bool:
        return (self.max_iterations is not None and module.progress.iterations >= self.max_iterations) or (
            self.max_kimg is not None and module.progress.images_seen >= self.max_kimg * 1000
        )

    def total_iterations(self, images_per_iteration: int) -> float:
        """The iteration at which the run stops (inf without a limit), for progress displays."""
        totals = [math.inf]
        if self.max_iterations is not None:
            totals.append(self.max_iterations)
        if self.max_kimg is not None and images_per_iteration > 0:
            totals.append(math.ceil(self.max_kimg * 1000 / images_per_iteration))
        return min(totals)

    def on_train_start(self, trainer, module) -> None:
        # A resume from a run that already reached its length trains nothing more.
        if self.reached(module):
            log.info(
                "this run already reached its length at iteration %d: nothing to train",
                module.progress.iterations,
            )
            trainer.should_stop = True

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self.reached(module):
            trainer.should_stop = True
        if not self.checked:  # after the first iteration, when its image count is known
            self.checked = True
            self.warn_epoch_limit(trainer, module.progress.last_images)

    def warn_epoch_limit(self, trainer, images_per_iteration: int) -> None:
        """Lightning's epoch limit ends a run on a small data set (few batches per epoch) before
        its length in GAN units: say so, with the override, rather than stop early unannounced."""
        epochs, per_epoch = trainer.max_epochs, trainer.num_training_batches
        if epochs is None or epochs < 0 or not math.isfinite(per_epoch):
            return
        ours = self.total_iterations(images_per_iteration)
        if math.isfinite(ours) and epochs * per_epoch < ours:
            limit = "train.max_iterations" if ours == self.max_iterations else "train.max_kimg"
            log.warning(
                "trainer.max_epochs=%d ends this run at iteration %d (%d per epoch), before %s "
                "(iteration %d): set trainer.max_epochs=-1 to run to it",
                epochs, epochs * per_epoch, per_epoch, limit, ours,
            )  # fmt: skip
