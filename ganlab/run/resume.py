"""Honest resume: the run's configuration compared with the checkpoint's before training.

- Architecture and data shape (networks, ``nz``, image size, channels, batch size, k D steps,
  the classes of a conditional run, the fixed-noise batch, whether ``G_ema`` exists): cannot
  change in a resumed run; one error names every such key with both values. After the model is
  built, its weights' names and shapes are compared with the checkpoint's too
  (``check_weights``), so that no other setting can turn into a crash inside Lightning's loading.
- Data and seed (which images, their preprocessing, the seed): refused unless
  ``train.allow_resume_changes=true``: the run would silently become a different experiment.
- Everything else that describes training (learning rates and optimizer settings, loss options,
  schedules, logging and checkpoint cadence, run length): applied. The new configuration is what
  gets built; optimizer hyperparameters, which Lightning restores from the checkpoint, are set
  again from it (``GANOptimizers.reapply``, at train start). The changes are written to
  ``resume_diff.json`` in the run directory and sent to the loggers.
- Paths, devices, precision, loggers and Hydra's own settings are where and how, not what:
  ignored.
- A setting ganlab gained after the checkpoint was written, at its off value (false or null,
  e.g. ``model.generator.hierarchical_z``), is what the checkpoint trained with: not a change.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganlab.run import slurm
from ganlab.utils.atomic import write_text
from ganlab.utils.errors import ResumeConfigError

if TYPE_CHECKING:
    from ganlab.checkpoint.format import GanlabState

# torch (through ganlab.checkpoint) is imported by the functions that read checkpoints, not at
# import: ganlab.train imports this module, and `ganlab-train --help` needs no torch.

log = logging.getLogger(__name__)

SHAPE = (
    "model._target_",
    "model.generator",
    "model.discriminator",
    "model.nz",
    "data.image_size",
    "data.channels",
    "data.batch_size",
    "model.d_steps_per_g",
    "model.num_classes",
    "model.n_fixed",
    "data.conditional",
)
DATA = (
    "seed",
    "model.seed",
    "model.latent",
    "data._target_",
    "data.root",
    "data.classes",
    "data.variant",
    "data.train",
    "data.center_crop",
    "data.load_size",
    "data.random_crop",
    "data.hflip",
    "data.seed",
    "data.max_images",
    "data.holdout",
    "model.class_names",
)
IGNORED = (
    "paths",
    "hydra",
    "ckpt_path",
    "task_name",
    "optimized_metric",
    "logger",
    "trainer.accelerator",
    "trainer.devices",
    "trainer.num_nodes",
    "trainer.strategy",
    "trainer.precision",
    "trainer.default_root_dir",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "data.num_workers",
    "data.pin_memory",
    "data.cache",
    "data.cache_dir",
    "data.device_resident",
    "data.download",
    "data.how_to_get",
    "model.channels_last",
    "model.compile",
    "model.cuda_graph",
)


def flatten(cfg: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(cfg, dict):
        out: dict[str, Any] = {}
        for k, v in cfg.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out or {prefix[:-1]: {}}
    return {prefix[:-1]: cfg}


def _under(key: str, prefixes: tuple[str, ...]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def compare(old: dict, new: dict) -> list[dict[str, Any]]:
    """Every setting that differs, with its kind: shape, data, applied (ignored ones left out)."""
    a, b = flatten(old), flatten(new)
    changes = []
    for key in sorted(set(a) | set(b)):
        if a.get(key) == b.get(key) or _under(key, IGNORED):
            continue
        if key not in a and b[key] in (False, None):  # an option added since, off: what the run trained with
            continue
        kind = "shape" if _under(key, SHAPE) else "data" if _under(key, DATA) else "applied"
        if key == "model.ema_half_life_kimg" and (a.get(key) is None) != (b.get(key) is None):
            kind = "shape"  # G_ema appears or disappears; another half-life is an applied change
        changes.append({"key": key, "checkpoint": a.get(key), "now": b.get(key), "kind": kind})
    return changes


def check(changes: list[dict[str, Any]], ckpt_path: str, allow_changes: bool) -> list[dict[str, Any]]:
    """Raise for changes that cannot be applied; return the ones that are."""

    def listing(kind: str) -> str:
        return ", ".join(
            f"{c['key']}: {c['checkpoint']!r} -> {c['now']!r}" for c in changes if c["kind"] == kind
        )

    if any(c["kind"] == "shape" for c in changes):
        raise ResumeConfigError(
            f"ckpt_path={ckpt_path} was trained with another architecture or data shape: {listing('shape')}. "
            "Resume with the checkpoint's values, or start a new run without ckpt_path."
        )
    if any(c["kind"] == "data" for c in changes) and not allow_changes:
        raise ResumeConfigError(
            f"resuming ckpt_path={ckpt_path} with other data or seed: {listing('data')}. "
            "Use the checkpoint's values, or set train.allow_resume_changes=true to continue on purpose."
        )
    return changes


def check_weights(model, ckpt: dict[str, Any], changes: list[dict[str, Any]], ckpt_path: str) -> None:
    """The built model's state (weights and buffers: names and shapes) is the checkpoint's;
    otherwise one ``ResumeConfigError`` naming what differs and the settings that changed."""
    saved = {k: tuple(v.shape) for k, v in ckpt["state_dict"].items()}
    built = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(built) - set(saved))
    extra = sorted(set(saved) - set(built))
    reshaped = sorted(k for k in set(built) & set(saved) if built[k] != saved[k])
    if not (missing or extra or reshaped):
        return

    def some(keys: list[str]) -> str:
        return ", ".join(keys[:4]) + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")

    parts = []
    if missing:
        parts.append(f"this run has {some(missing)}, the checkpoint not")
    if extra:
        parts.append(f"the checkpoint has {some(extra)}, this run not")
    if reshaped:
        parts.append("other shapes: " + some([f"{k} {saved[k]} -> {built[k]}" for k in reshaped]))
    changed = "; ".join(f"{c['key']}: {c['checkpoint']!r} -> {c['now']!r}" for c in changes) or "none"
    raise ResumeConfigError(
        f"ckpt_path={ckpt_path} does not fit the model this configuration builds ({'; '.join(parts)}; "
        f"settings changed since the checkpoint: {changed}) (ckpt_path): resume with the checkpoint's "
        "settings, or start a new run without ckpt_path"
    )


def record(
    changes: list[dict[str, Any]], ckpt_path: str, iteration: int, run_dir: str | Path, loggers: list
) -> None:
    """Append this resume's changes, and the iteration it resumed at, to
    ``<run_dir>/resume_diff.json`` (the doctor reads it) and give them to the loggers."""
    path = Path(run_dir) / "resume_diff.json"
    history = json.loads(path.read_text()) if path.is_file() else []
    history.append({"ckpt_path": str(ckpt_path), "iteration": iteration, "changes": changes})
    write_text(path, json.dumps(history, indent=2, default=str))
    if changes:
        summary = {f"resume_diff/{c['key']}": f"{c['checkpoint']!r} -> {c['now']!r}" for c in changes}
        for logger in loggers:
            logger.log_hyperparams(summary)


def resolve_ckpt_path(cfg) -> str | None:
    """``ckpt_path=last``: this run directory's newest intact checkpoint (``last.ckpt``, or the
    newest readable ``it*.ckpt`` when a kill or a full disk cut ``last.ckpt`` short) when there
    is one (a requeued SLURM job, a restarted command), else a fresh start. A requeued SLURM job
    (``SLURM_RESTART_COUNT`` > 0) resumes this way without being told."""
    from omegaconf import OmegaConf

    from ganlab.checkpoint.format import newest_intact_checkpoint

    path = cfg.get("ckpt_path")
    if path is None and slurm.restart_count() > 0:
        log.info("SLURM job %s, attempt %d: resuming from this run's last checkpoint", slurm.job_id(),
                 slurm.restart_count() + 1)  # fmt: skip
        path = "last"
    if path == "last":
        ckpt_dir = OmegaConf.select(cfg, "callbacks.checkpoint.dirpath", default=None)
        found = newest_intact_checkpoint(ckpt_dir or Path(cfg.paths.output_dir) / "checkpoints")
        path = str(found) if found else None
        log.info(
            "ckpt_path=last: %s", f"resuming from {path}" if path else "no checkpoint yet, starting fresh"
        )
    return path


@dataclass
class ResumePoint:
    """The checkpoint a run resumes from, read once: its path, the loaded dict and its
    ``GanlabState`` (upgraded), and, once ``check``ed, the settings this run changes."""

    path: str
    checkpoint: dict[str, Any]
    state: GanlabState
    changes: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def read(cls, cfg) -> ResumePoint | None:
        """The checkpoint ``ckpt_path`` names (``last``: see ``resolve_ckpt_path``), or None."""
        from ganlab.checkpoint.format import read_state

        path = resolve_ckpt_path(cfg)
        if not path:
            return None
        checkpoint, state = read_state(path)
        return cls(str(path), checkpoint, state)

    def check(self, config: dict[str, Any], allow_changes: bool) -> None:
        """Compare this run's resolved configuration with the checkpoint's: refuse what cannot
        change, keep the rest as ``changes``."""
        self.changes = check(compare(self.state.config, config), self.path, allow_changes)

    def restore(self, model, run_dir: str | Path, loggers: list, rank_zero: bool) -> None:
        """Before ``trainer.fit`` loads the weights: the techniques the doctor added mid-run
        rebuilt, the weights' names and shapes checked; the resume recorded (rank 0)."""
        model.restore_techniques(self.state.techniques)
        check_weights(model, self.checkpoint, self.changes, self.path)
        if rank_zero:
            record(self.changes, self.path, self.state.iterations, run_dir, loggers)
