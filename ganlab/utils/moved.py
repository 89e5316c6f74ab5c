"""Python paths that moved: when ganlab 0.2 put its modules in packages by role, and when 0.3
put the DDP strategy with the training it runs (``ganlab.training.ddp``).

A ``_target_`` of an older layout in a checkpoint's stored configuration is upgraded silently
(``GanlabState.of``: the resume compares like with like). Typed in a configuration of your own
(a ``--config-dir`` copy of an old ``conf/``), it answers with one ``ganlab:`` line naming the
new path (``ganlab.run.checks``). Old paths that still import are not listed: the classes of
``ganlab.callbacks`` and ``ganlab.loggers`` are re-exported by their packages, and
``ganlab.augment``, ``ganlab.models``, ``ganlab.losses``, ``ganlab.data`` did not move.
"""

from __future__ import annotations

from typing import Any

MODULES = {  # an older module -> where it is now, for every name in it
    "ganlab.assembly": "ganlab.training.build",
    "ganlab.optim": "ganlab.training.optim",
    "ganlab.module": "ganlab.training.module",
    "ganlab.ema": "ganlab.training.ema",
    "ganlab.latent": "ganlab.training.latent",
    "ganlab.guard": "ganlab.callbacks.guard",
    "ganlab.runlength": "ganlab.callbacks.run_length",
    "ganlab.progress": "ganlab.callbacks.progress",
    "ganlab.preemption": "ganlab.callbacks.preemption",
    "ganlab.hydra_callbacks": "ganlab.run.hydra_callbacks",
    "ganlab.screen": "ganlab.run.console",
    "ganlab.profiler": "ganlab.speed.profiler",
    "ganlab.strategy": "ganlab.training.ddp",
    "ganlab.truncation": "ganlab.models.truncation",
    "ganlab.speed.ddp": "ganlab.training.ddp",  # 0.3
}
MOVED_IN_0_3 = {"ganlab.speed.ddp"}  # the other entries moved in 0.2
NAMES = {  # 0.1 names whose module split in two or more
    "ganlab.checkpoints.AtomicCheckpointIO": "ganlab.checkpoint.io.AtomicCheckpointIO",
    "ganlab.doctor.Doctor": "ganlab.callbacks.doctor.Doctor",
    "ganlab.runstate.RunState": "ganlab.callbacks.run_state.RunState",
}


def new_path(target: str) -> str | None:
    """The path now of an older ``_target_``, or None when ``target`` did not move."""
    if target in NAMES:
        return NAMES[target]
    module, _, name = target.rpartition(".")
    return f"{MODULES[module]}.{name}" if module in MODULES else None


def moved_in(target: str) -> str:
    """The ganlab version whose layout moved ``target``."""
    return "0.3" if target.rpartition(".")[0] in MOVED_IN_0_3 else "0.2"


def moved_targets(node: Any, prefix: str = "") -> list[tuple[str, str, str]]:
    """(key, old, new) for every ``_target_`` (or Hydra's ``()``) in ``node`` that moved."""
    found = []
    if isinstance(node, dict):
        for k, v in node.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if k in ("_target_", "()") and isinstance(v, str) and new_path(v):
                found.append((key, v, new_path(v)))
            else:
                found += moved_targets(v, key)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += moved_targets(v, f"{prefix}.{i}")
    return found


def upgrade_targets(config: Any) -> Any:
    """A copy of ``config`` with every moved ``_target_`` set to its new path."""
    if isinstance(config, dict):
        return {
            k: (new_path(v) or v) if k in ("_target_", "()") and isinstance(v, str) else upgrade_targets(v)
            for k, v in config.items()
        }
    if isinstance(config, list):
        return [upgrade_targets(v) for v in config]
    return config
