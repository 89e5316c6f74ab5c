"""The callback that writes and reads ``checkpoint["ganlab"]`` (``ganlab.checkpoint.format``);
``ganlab.train`` always adds it (a run without it could not resume)."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.loggers import WandbLogger

from ganlab.checkpoint.format import GanlabState
from ganlab.training.rng import all_rank_states, restore_rank_state, seed_rank_streams


class RunState(L.Callback):
    """Writes and reads ``checkpoint["ganlab"]``: ``counters``, ``rng`` (every rank's streams,
    indexed by global rank), ``config`` (the resolved configuration, for provenance, resume checks
    and ``ganlab.checkpoint.generator.load_generator``), ``optim`` (the rollbacks' rate scale),
    ``wandb_id`` (the W&B run a resume continues), ``techniques`` and ``history`` (the module's).

    Per-rank streams start at the first batch (``on_train_start``), so that nothing Lightning does
    while restoring (loggers, loaders) shifts them: the checkpoint's states, or fresh streams from
    (seed, rank). The networks were built before, from the same seed on every rank."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._pending_rng: list | dict | None = None

    def on_train_start(self, trainer, module) -> None:
        rank, world = trainer.global_rank, trainer.world_size
        if self._pending_rng is not None:
            restore_rank_state(self._pending_rng, self.seed, rank, world)
            self._pending_rng = None
        else:
            seed_rank_streams(self.seed, rank)

    def on_save_checkpoint(self, trainer, module, checkpoint: dict[str, Any]) -> None:
        GanlabState(
            config=module.run_config,
            counters=module.progress.state_dict(),
            rng=all_rank_states(),  # a collective under DDP: every rank saves
            optim=module.optim.state_dict(),
            wandb_id=next((lg.version for lg in trainer.loggers if isinstance(lg, WandbLogger)), None),
            techniques=module.technique_state(),
            history=module.history.state_dict(),
        ).write(checkpoint)

    def on_load_checkpoint(self, trainer, module, checkpoint: dict[str, Any]) -> None:
        state = GanlabState.of(checkpoint)
        module.progress.load_state_dict(state.counters)
        module.optim.load_state_dict(state.optim)
        module.history.load_state_dict(state.history)
        self._pending_rng = state.rng
