"""A run's state beside the weights: progress in GAN units, every rank's random streams, the
resolved configuration and the logger ids, written to and read from ``checkpoint["ganlab"]``.

``Progress`` is the module's count of iterations, images and updates (Lightning's
``global_step`` counts optimizer steps: two per iteration with two optimizers, unevenly with
``d_every``/``g_every``). ``RunState`` is the callback that checkpoints it all; ``ganlab.train``
always adds it (a run without it could not resume).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import lightning as L
from lightning.pytorch.loggers import WandbLogger

from ganlab.rng import all_rank_states, restore_rank_state, seed_rank_streams

COUNTERS = ("iterations", "images_seen", "d_updates", "g_updates", "d_skipped")


@dataclass
class Progress:
    """GAN iterations, real images shown to D (all ranks) and updates done; ``last_images``:
    the real images of the latest iteration (all ranks), for the kimg cadences."""

    iterations: int = 0
    images_seen: int = 0
    d_updates: int = 0
    g_updates: int = 0
    d_skipped: int = 0
    last_images: int = field(default=0, compare=False)

    def advance(self, images: int, d_done: int, d_skipped: int, g_done: int) -> None:
        self.iterations += 1
        self.images_seen += images
        self.last_images = images
        self.d_updates += d_done
        self.d_skipped += d_skipped
        self.g_updates += g_done

    def state_dict(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if k in COUNTERS}

    def load_state_dict(self, state: dict[str, int]) -> None:
        for k in COUNTERS:
            setattr(self, k, int(state.get(k, 0)))


class RunState(L.Callback):
    """Writes and reads ``checkpoint["ganlab"]``: ``counters``, ``rng`` (every rank's streams,
    indexed by global rank), ``config`` (the resolved configuration, for provenance, resume checks
    and ``ganlab.checkpoints.load_generator``), ``optim`` (the rollbacks' rate scale) and
    ``wandb_id`` (the W&B run a resume continues).

    Per-rank streams start at the first batch (``on_train_start``), so that nothing Lightning does
    while restoring (loggers, loaders) shifts them: the checkpoint's states, or fresh streams from
    (seed, rank). The networks were built before, from the same seed on every rank."""

    def __init__(self, seed: int, config: dict[str, Any] | None = None) -> None:
        self.seed, self.config = seed, config
        self._pending_rng: list | dict | None = None

    def on_train_start(self, trainer, module) -> None:
        rank, world = trainer.global_rank, trainer.world_size
        if self._pending_rng is not None:
            restore_rank_state(self._pending_rng, self.seed, rank, world)
            self._pending_rng = None
        else:
            seed_rank_streams(self.seed, rank)

    def on_save_checkpoint(self, trainer, module, checkpoint: dict[str, Any]) -> None:
        checkpoint["ganlab"] = {
            "counters": module.progress.state_dict(),
            "rng": all_rank_states(),  # a collective under DDP: every rank saves
            "config": self.config,
            "optim": module.optim.state_dict(),
            "wandb_id": next((lg.version for lg in trainer.loggers if isinstance(lg, WandbLogger)), None),
        }

    def on_load_checkpoint(self, trainer, module, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("ganlab")
        if state is None:
            raise KeyError("not a ganlab checkpoint: it has no 'ganlab' section")
        module.progress.load_state_dict(state["counters"])
        module.optim.load_state_dict(state.get("optim", {}))
        self._pending_rng = state["rng"]
