"""Divergence guard: a diverging run stops (or rolls back) and never poisons a checkpoint.

The training module keeps, on the device, the largest magnitude of any loss or statistic since
the last check (``ganlab.training.step_stats.StepStats.within``): NaN, inf, or past
``loss_bound`` means the run diverged. The guard reads that one flag (a host sync) only every
``check_every`` iterations, on iterations where statistics are logged or a checkpoint is
written, and at the end of each epoch; under DDP the ranks agree on it (one small all-reduce per
check). A checkpoint is never written from non-finite weights or after a divergence: the guard
checks again inside every save.

On divergence: ``on_divergence=stop`` raises ``DivergenceError`` naming the newest good
checkpoint and the override that resumes from it; ``rollback`` reloads that checkpoint's weights
and optimizer states, multiplies both learning rates by ``rollback_lr_factor``, logs that it did
(``train/rollbacks``, ``rollbacks.jsonl`` in the run directory, the run's history) and
continues, up to ``max_rollbacks`` times. The good checkpoint is the newest intact snapshot in the
run's history (``ganlab.training.history``; a snapshot, not ``last.ckpt``, which the next save
overwrites), else the checkpoint the run resumed from. The settings are checked before training
(``ganlab.run.checks``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import lightning as L
import torch

from ganlab.checkpoint.format import GanlabState, first_intact, read_checkpoint
from ganlab.checkpoint.saver import CadenceSaver
from ganlab.utils.errors import DivergenceError
from ganlab.utils.every_n import due, due_at

log = logging.getLogger(__name__)


class DivergenceGuard(L.Callback):
    def __init__(
        self,
        on_divergence: str = "stop",
        loss_bound: float = 1e6,
        check_every: int = 50,
        rollback_lr_factor: float = 0.5,
        max_rollbacks: int = 3,
        run_dir: str | None = None,
    ) -> None:
        self.on_divergence, self.loss_bound, self.check_every = on_divergence, float(loss_bound), check_every
        self.rollback_lr_factor, self.max_rollbacks = rollback_lr_factor, max_rollbacks
        self.run_dir = Path(run_dir) if run_dir else None
        self._savers: list[CadenceSaver] = []

    # -- when to look ----------------------------------------------------------------------------
    def on_train_start(self, trainer, module) -> None:
        # Found once: a runtime-checkable protocol's isinstance costs ~16 us, too much per iteration.
        self._savers = [cb for cb in trainer.checkpoint_callbacks if isinstance(cb, CadenceSaver)]

    def _due(self, trainer, module) -> bool:
        it = module.progress.iterations
        if due(self.check_every, it) or due(trainer.log_every_n_steps, it):
            return True
        # Checkpoint callbacks run after this one (Lightning orders them last): look first.
        return any(due_at(module.progress, cb.every_n_iterations, cb.every_kimg) for cb in self._savers)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self._due(trainer, module):
            self.check(trainer, module)

    def on_train_epoch_end(self, trainer, module) -> None:
        self.check(trainer, module)  # before the epoch-end checkpoint

    def on_save_checkpoint(self, trainer, module, checkpoint: dict) -> None:
        # The last line of defence: raising here stops the write.
        if self.diverged(trainer, module) or not weights_finite(module):
            raise DivergenceError(
                self.message(module, newest_good_checkpoint(trainer, module), " while saving a checkpoint")
            )

    # -- what to do ----------------------------------------------------------------------------
    def diverged(self, trainer, module) -> bool:
        bad = (~module.stats.within(self.loss_bound)).float().to(module.device)
        return bool(trainer.strategy.reduce(bad, reduce_op="sum") > 0)  # every rank decides alike

    def check(self, trainer, module) -> None:
        if not self.diverged(trainer, module):
            return
        good, rollbacks = newest_good_checkpoint(trainer, module), len(module.history.rollbacks)
        if self.on_divergence == "rollback" and good is not None and rollbacks < self.max_rollbacks:
            self.rollback(trainer, module, good)
            return
        why = ""
        if self.on_divergence == "rollback":
            why = (
                f" (rolled back {rollbacks} times already, train.max_rollbacks={self.max_rollbacks})"
                if good is not None
                else " (no checkpoint to roll back to yet)"
            )
        raise DivergenceError(self.message(module, good, why))

    def message(self, module, good: Path | None, context: str = "") -> str:
        resume = (
            f"The newest good checkpoint is '{good}': resume with ckpt_path={good}"
            if good is not None
            else "No checkpoint was written before it"
        )
        return (
            f"training diverged by GAN iteration {module.progress.iterations}{context}: a loss or statistic "
            f"became NaN/inf or exceeded train.loss_bound={self.loss_bound:g}. {resume} and lower "
            "optimizer.g.lr / optimizer.d.lr (or set train.on_divergence=rollback), or try "
            "trainer.precision=32-true."
        )

    def rollback(self, trainer, module, path: Path) -> None:
        ckpt = read_checkpoint(path)  # the project's one safe loader (weights_only, validated)
        module.load_state_dict(ckpt["state_dict"])
        for opt, state in zip(trainer.optimizers, ckpt["optimizer_states"]):
            opt.load_state_dict(state)
        rates = module.optim.rescale(self.rollback_lr_factor, ("g", "d"), trainer, module)
        module.states_replaced()
        module.stats.reset_health()
        event = {
            "iteration": module.progress.iterations,
            "checkpoint": str(path),
            "checkpoint_iteration": GanlabState.of(ckpt).iterations,
            "lr_g": rates["g"],  # what the optimizers now use
            "lr_d": rates["d"],
            "rollbacks": len(module.history.rollbacks) + 1,
        }
        module.history.record_rollback(event)
        log.warning(
            "training diverged: rolled back to %s with learning rates x%g (%s)",
            path,
            self.rollback_lr_factor,
            event,
        )
        for logger in trainer.loggers:
            logger.log_metrics(
                {
                    "train/rollbacks": event["rollbacks"],
                    "train/lr_g": event["lr_g"],
                    "train/lr_d": event["lr_d"],
                },
                step=module.progress.iterations,
            )
        if trainer.is_global_zero and self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            with open(self.run_dir / "rollbacks.jsonl", "a") as f:
                f.write(json.dumps(event) + "\n")


def weights_finite(module: torch.nn.Module) -> bool:
    """Every floating-point parameter and buffer is finite (one sync)."""
    tensors = [t for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()]
    if not tensors:
        return True
    return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())


def newest_good_checkpoint(trainer, module) -> Path | None:
    """The newest intact snapshot in the run's history (the guard never lets a bad one be
    written), else the checkpoint the run resumed from."""
    found = first_intact(module.history.snapshots())
    return found or (Path(trainer.ckpt_path) if trainer.ckpt_path else None)
