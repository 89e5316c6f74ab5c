"""The checkpoint format: what a ganlab checkpoint holds, read and upgraded in one place.

A ganlab checkpoint is Lightning's checkpoint dict (``state_dict``: the ``G.``, ``D.`` and
``G_ema.`` weights; ``optimizer_states``; ``loops``; ``callbacks``: each callback's
``state_dict``, the guard's rollbacks and the doctor's trackers among them) plus
``checkpoint["ganlab"]``, a ``GanlabState``:

  version     3 (ganlab 0.1 wrote none: version 1; 0.2 wrote 2)
  config      the resolved configuration: resume checks, ``load_generator``, provenance
  counters    ``TrainingProgress``: iterations, images_seen, d_updates, g_updates, d_skipped
  rng         every rank's random streams, indexed by global rank (``ganlab.training.rng``)
  optim       ``GANOptimizers``' state: the rollbacks' learning-rate scale
  wandb_id    the W&B run a resume continues (None without W&B)
  techniques  module state that is not weights: ``added_augments``, the augmentations the
              doctor's autopilot switched on (rebuilt before the weights load), and ``loss``,
              the loss's own state (the path-length penalty's running mean)
  history     ``ganlab.training.history.History``: the signals, rollbacks, evaluations and
              snapshots the callbacks share (version 2 kept them in the callbacks' states)

Everything that writes (``callbacks.run_state.RunState``), reads (``checkpoint.generator``,
``train``, the loggers, the report), compares (``run.resume``) or rolls back
(``callbacks.guard``) goes through ``GanlabState.of``; versions 1 and 2 are upgraded there (0.1's
``added_augments`` at the checkpoint's top level and ``_target_`` paths of its layout; the
history from 0.2's callback states; no ``data.holdout``: the run trained on all its images).
``newest_intact_checkpoint`` finds the checkpoint ``ckpt_path=last`` resumes from;
``first_intact`` is the one readability test of a list of candidates.
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
VERSION = 3
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
    history: dict[str, Any] = field(default_factory=dict)
    version: int = VERSION
    # Read, not written: the settings an older checkpoint implies, which a run resuming it keeps
    # (dotted keys: {"data.holdout": 0} for a run from before held-out images).
    implied: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, checkpoint: dict[str, Any]) -> GanlabState:
        """The state of a loaded checkpoint, upgraded to this version."""
        state = checkpoint.get(KEY)
        if not isinstance(state, dict):
            raise KeyError(f"not a ganlab checkpoint: it has no '{KEY}' section")
        version = state.get("version", 1)
        techniques = dict(state.get("techniques") or {})
        if version < 2 and "added_augments" in checkpoint:  # 0.1: a top-level key
            techniques["added_augments"] = list(checkpoint["added_augments"])
        config = upgrade_targets(state["config"])
        implied = {}
        if "holdout" not in (config.get("data") or {}):  # a run from before held-out images trained on all
            implied["data.holdout"] = 0
            config = {**config, "data": {**(config.get("data") or {}), "holdout": 0}}
        history = (
            state.get("history")
            if version >= 3
            else history_of_callbacks(checkpoint.get("callbacks"), config)
        )
        return cls(
            config=config,
            counters=dict(state["counters"]),
            rng=state.get("rng"),
            optim=dict(state.get("optim") or {}),
            wandb_id=state.get("wandb_id"),
            techniques=techniques,
            history=dict(history or {}),
            implied=implied,
        )

    def write(self, checkpoint: dict[str, Any]) -> None:
        written = asdict(self)
        del written["implied"]
        checkpoint[KEY] = {**written, "version": VERSION}

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


def newest_intact_checkpoint(dirpath: str | Path) -> Path | None:
    """A ``ckpt_path=last`` resume's checkpoint: ``last.ckpt`` in ``dirpath`` when it is readable,
    else the newest readable snapshot (newest first by modification time, then by name:
    ``it0000042`` by iteration; ``best.ckpt`` is the evaluation's pick, never the newest); None
    when there is none. A kill or a full disk can cut a file short (ganlab's atomic writes make
    that rare, copies and other tools do not): each unreadable one is skipped and named in a
    warning. (The guard's rollback and the doctor's advice take their snapshots from the run's
    history instead.)"""
    d = Path(dirpath)
    snapshots = (
        [p for p in d.glob("*.ckpt") if p.name not in ("last.ckpt", "best.ckpt")] if d.is_dir() else []
    )
    snapshots.sort(key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)
    return first_intact([d / "last.ckpt", *snapshots])


def first_intact(paths: list[str | Path]) -> Path | None:
    """The first of ``paths`` that is a readable ganlab checkpoint, each unreadable one skipped
    and named in a warning (a missing one silently)."""
    for path in map(Path, paths):
        if not path.is_file():
            continue
        try:
            read_checkpoint(path)
        except CheckpointError as e:
            log.warning("skipping an unreadable checkpoint: %s", e)
            continue
        return path
    return None


def history_of_callbacks(callbacks: dict[str, Any] | None, config: dict[str, Any]) -> dict[str, Any]:
    """A version-2 checkpoint's history, from the states its callbacks kept: the guard's rollback
    count, the evaluation's best FID (at the iteration the doctor recorded), the doctor's
    reference windows (their iterations unknown: -1; the warm-up level's at 0) and the snapshot
    it last found healthy (named as ``config``'s checkpoint callback names its files)."""
    states = callbacks or {}
    guard, evaluation, doctor = (states.get(k) or {} for k in ("DivergenceGuard", "FIDEvaluation", "Doctor"))
    history: dict[str, Any] = {"rollbacks": [{}] * int(guard.get("rollbacks", 0))}
    best = doctor.get("best")
    fid = evaluation.get("best_fid", best[0] if best else None)
    if fid is not None and fid != float("inf"):
        history["evaluations"] = [{"iteration": int(best[1]) if best else -1, "fid": float(fid)}]
        best_dir = ((config.get("callbacks") or {}).get("evaluation") or {}).get("best_dirpath")
        history["best_checkpoint"] = f"{best_dir}/best.ckpt" if best_dir else None
    refs = doctor.get("refs") or {}
    names = {"loss": "doctor/loss_peak", "ada_p": "train/ada_p", "diversity": "doctor/diversity"}
    history["last"] = {names[k]: [[-1, v] for v in refs[k]] for k in names if k in refs}
    if "warm_g_grad_norm" in refs:
        history["first"] = {"doctor/g_grad_norm": [[0, v] for v in refs["warm_g_grad_norm"]]}
    saver = (config.get("callbacks") or {}).get("checkpoint") or {}
    good = doctor.get("good_iteration")
    if good is not None and saver.get("dirpath"):
        name = saver.get("filename", "it{iteration:07d}").format(iteration=good)
        history["checkpoints"] = [
            {"iteration": good, "path": f"{saver['dirpath']}/{name}.ckpt", "conditions": []}
        ]
    return history
