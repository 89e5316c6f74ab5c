"""The checkpoint format: what a ganlab checkpoint holds, read and upgraded in one place.

A ganlab checkpoint is Lightning's checkpoint dict (``state_dict``: the ``G.``, ``D.`` and
``G_ema.`` weights; ``optimizer_states``; ``loops``; ``callbacks``: each callback's
``state_dict``, the guard's rollbacks and the doctor's trackers among them) plus
``checkpoint["ganlab"]``, a ``GanlabState``:

  version     2 (ganlab 0.1 wrote none: version 1)
  config      the resolved configuration: resume checks, ``load_generator``, provenance
  counters    ``TrainingProgress``: iterations, images_seen, d_updates, g_updates, d_skipped
  rng         every rank's random streams, indexed by global rank (``ganlab.training.rng``)
  optim       ``GANOptimizers``' state: the rollbacks' learning-rate scale
  wandb_id    the W&B run a resume continues (None without W&B)
  techniques  module state that is not weights: ``added_augments``, the augmentations the
              doctor's autopilot switched on (rebuilt before the weights load), and ``loss``,
              the loss's own state (the path-length penalty's running mean)

Everything that writes (``callbacks.run_state.RunState``), reads (``checkpoint.generator``,
``train``, the loggers, the report), compares (``run.resume``) or rolls back
(``callbacks.guard``) goes through ``GanlabState.of``; version 1 is upgraded there (its
``added_augments`` at the checkpoint's top level, its ``_target_`` paths of 0.1's layout).
``newest_intact_checkpoint`` is the one search for the checkpoint to resume or roll back to.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ganlab.utils.errors import CheckpointError
from ganlab.utils.moved import upgrade_targets

log = logging.getLogger(__name__)

KEY = "ganlab"
VERSION = 2
HOW = "pass a checkpoint written by a ganlab run, e.g. outputs/train/runs/<date>/checkpoints/last.ckpt"


@dataclass
class GanlabState:
    """``checkpoint["ganlab"]`` (see the module's docstring). Plain types only: checkpoints load
    with ``weights_only=True``."""

    config: dict[str, Any]
    counters: dict[str, int]
    rng: Any = None
    optim: dict[str, Any] = field(default_factory=dict)
    wandb_id: str | None = None
    techniques: dict[str, Any] = field(default_factory=dict)
    version: int = VERSION

    @classmethod
    def of(cls, checkpoint: dict[str, Any]) -> GanlabState:
        """The state of a loaded checkpoint, upgraded to this version."""
        state = checkpoint.get(KEY)
        if not isinstance(state, dict):
            raise KeyError(f"not a ganlab checkpoint: it has no '{KEY}' section")
        techniques = dict(state.get("techniques") or {})
        if state.get("version", 1) < 2 and "added_augments" in checkpoint:  # 0.1: a top-level key
            techniques["added_augments"] = list(checkpoint["added_augments"])
        return cls(
            config=upgrade_targets(state["config"]),
            counters=dict(state["counters"]),
            rng=state.get("rng"),
            optim=dict(state.get("optim") or {}),
            wandb_id=state.get("wandb_id"),
            techniques=techniques,
        )

    def write(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[KEY] = asdict(self)

    @property
    def iterations(self) -> int:
        return int(self.counters["iterations"])


def read_checkpoint(path: str | Path, key: str = "ckpt_path") -> dict[str, Any]:
    """Load a ganlab checkpoint safely (``weights_only=True``, memory-mapped) or raise one
    ``CheckpointError`` naming the file, what is wrong with it and ``key``, the setting to fix.
    Never suggests unpickling arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{key}={path}: no such file; {HOW}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{key}={path}: the file is empty (a write that never finished?); {HOW}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # torch raises RuntimeError, UnpicklingError, EOFError ... by format
        raise CheckpointError(
            f"{key}={path}: not a readable PyTorch checkpoint (truncated, another format, or not "
            f"made by ganlab: {type(e).__name__}); {HOW}"
        ) from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{key}={path}: holds a {type(ckpt).__name__}, not a ganlab checkpoint; {HOW}")
    state = ckpt.get(KEY)
    if "pytorch-lightning_version" not in ckpt or not isinstance(state, dict) or not state.get("config"):
        raise CheckpointError(
            f"{key}={path}: a dict without ganlab's training state (keys: {sorted(ckpt)[:6]}), "
            f"not a ganlab checkpoint; {HOW}"
        )
    return ckpt


def read_state(path: str | Path, key: str = "ckpt_path") -> tuple[dict[str, Any], GanlabState]:
    """``read_checkpoint`` and its ``GanlabState``."""
    ckpt = read_checkpoint(path, key)
    return ckpt, GanlabState.of(ckpt)


def newest_intact_checkpoint(dirpaths: str | Path | list[str | Path], snapshot: bool = False) -> Path | None:
    """The newest readable checkpoint in ``dirpaths``, each unreadable one skipped and named in a
    warning (a kill or a full disk can cut a file short; ganlab's atomic writes make that rare,
    copies and other tools do not); None when there is none.

    ``snapshot=False`` (a ``ckpt_path=last`` resume): ``last.ckpt`` first, then the snapshots.
    ``snapshot=True`` (the guard's rollback, the doctor's advice): a snapshot named by its
    iteration, which the next save does not overwrite as it does ``last.ckpt``. Snapshots are
    ordered newest first by modification time, then by name (``it0000042``: by iteration);
    ``best.ckpt`` is the evaluation's pick, never the newest."""
    dirs = [Path(d) for d in (dirpaths if isinstance(dirpaths, list) else [dirpaths])]
    snapshots, lasts = [], []
    for d in dirs:
        if d.is_dir():
            snapshots += [p for p in d.glob("*.ckpt") if p.name not in ("last.ckpt", "best.ckpt")]
            lasts += [d / "last.ckpt"] if (d / "last.ckpt").is_file() else []
    snapshots.sort(key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)
    for path in snapshots + lasts if snapshot else lasts + snapshots:
        try:
            read_checkpoint(path)
        except CheckpointError as e:
            log.warning("skipping an unreadable checkpoint: %s", e)
            continue
        return path
    return None
