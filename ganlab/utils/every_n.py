"""The one "every N" rule, in GAN iterations or in kimg (thousands of real images shown to D, all
ranks, as stylegan2-ada counts), shared by logging, sample grids, checkpoints, evaluation and the
divergence checks, so that they all fire on the same iterations."""

from __future__ import annotations


def due(every: int | None, iteration: int) -> bool:
    """True after iteration ``iteration`` (counted from 1) when it is a multiple of ``every``;
    never when ``every`` is 0 or None (the switch that turns a periodic action off)."""
    return bool(every) and every > 0 and iteration > 0 and iteration % every == 0


def due_kimg(every_kimg: float | None, images_seen: int, images_this_iteration: int) -> bool:
    """True on the iteration whose images carried ``images_seen`` past a multiple of
    ``every_kimg`` thousand images; never when ``every_kimg`` is 0 or None."""
    if not every_kimg or every_kimg <= 0 or images_this_iteration <= 0:
        return False
    step = every_kimg * 1000
    return int(images_seen // step) > int((images_seen - images_this_iteration) // step)


def due_at(progress, every_n_iterations: int | None, every_kimg: float | None) -> bool:
    """Either cadence, after the latest iteration of ``progress`` (a
    ``ganlab.training.counters.TrainingProgress``)."""
    return due(every_n_iterations, progress.iterations) or due_kimg(
        every_kimg, progress.images_seen, progress.last_images
    )
