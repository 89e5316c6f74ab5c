"""The run's history: one record the callbacks share, in the manner of detectron2's
``EventStorage``. Each writes what it finds and reads what others found here; no callback looks
another up.

Writers and what they put here:
  ``step_stats.publish``      the step's statistics (``train/*``, ``doctor/*``) at every log tick
  the divergence guard        its rollbacks
  the evaluation callback     each evaluation (FID, KID, precision, recall) and ``best.ckpt``
  the checkpoint callback     each snapshot written, with the doctor's conditions at that moment
  the doctor                  its derived signals and the conditions that hold
Readers: the doctor (its signals and reference windows), the guard (the checkpoint to roll back
to), the evaluation callback (the best FID), the progress line (the conditions).

Kept in the checkpoint (``GanlabState.history``), so a resumed run continues with the same
history; a checkpoint of ganlab 0.2 is upgraded from its callbacks' states
(``ganlab.checkpoint.format``).
"""

from __future__ import annotations

import math
from typing import Any

WINDOW = 64  # values kept per signal, at the run's start and at its end


class History:
    """See the module docstring. Signals are kept as (iteration, value) pairs: the first
    ``WINDOW`` of each (a reference from early in the run) and the last ``WINDOW``."""

    def __init__(self) -> None:
        self.latest: dict[str, float] = {}  # each signal's newest value (held between measurements)
        self.iteration = 0  # of the newest tick
        self.fresh: set[str] = set()  # the signals measured at the newest tick
        self.first: dict[str, list[tuple[int, float]]] = {}
        self.last: dict[str, list[tuple[int, float]]] = {}
        self.rollbacks: list[dict[str, Any]] = []
        self.evaluations: list[dict[str, Any]] = []  # {"iteration", "fid", ...}, oldest first
        self.best_checkpoint: str | None = None  # the evaluation's best.ckpt, once written
        self.checkpoints: list[dict[str, Any]] = []  # {"iteration", "path", "conditions"}
        self.conditions: list[str] = []  # the doctor's conditions that hold now

    # -- signals ---------------------------------------------------------------------------------
    def put(self, values: dict[str, float], iteration: int) -> None:
        """One tick's values (finite or not: a NaN is what the guard and the doctor must see)."""
        if iteration != self.iteration:
            self.iteration, self.fresh = iteration, set()
        self.fresh |= set(values)
        for name, value in values.items():
            value = float(value)
            self.latest[name] = value
            if not math.isfinite(value):
                continue  # a reference window holds measurements, not failures to measure
            first = self.first.setdefault(name, [])
            if len(first) < WINDOW:
                first.append((iteration, value))
            last = self.last.setdefault(name, [])
            last.append((iteration, value))
            del last[:-WINDOW]

    def recent(self, name: str, n: int, before: int | None = None) -> list[float]:
        """The newest ``n`` finite values of ``name`` (oldest first), of ticks before iteration
        ``before`` when given."""
        values = [v for it, v in self.last.get(name, []) if before is None or it < before]
        return values[-n:] if n > 0 else []

    def early(self, name: str, until: int) -> list[float]:
        """The finite values of ``name`` logged at iterations up to ``until`` (at most ``WINDOW``)."""
        return [v for it, v in self.first.get(name, []) if it <= until]

    # -- events ----------------------------------------------------------------------------------
    def record_rollback(self, event: dict[str, Any]) -> None:
        self.rollbacks.append(dict(event))

    def record_evaluation(self, result: dict[str, Any]) -> bool:
        """One evaluation's result; True when its FID is the best so far (lower is better)."""
        best = self.best_evaluation()
        keep = ("iteration", "fid", "kid_mean", "is_mean", "precision", "recall")
        self.evaluations.append({k: result[k] for k in keep if k in result})
        return best is None or result["fid"] < best["fid"]

    def best_evaluation(self) -> dict[str, Any] | None:
        """The evaluation with the lowest FID (the first of equals), or None."""
        return min(self.evaluations, key=lambda e: e["fid"], default=None)

    def record_checkpoint(self, path: str, iteration: int) -> None:
        """A snapshot about to be written (before the save, so that it holds its own entry)."""
        self.checkpoints.append(
            {"iteration": iteration, "path": str(path), "conditions": list(self.conditions)}
        )
        del self.checkpoints[:-WINDOW]

    def snapshots(self, healthy: bool = False) -> list[str]:
        """The snapshots written, newest first; ``healthy``: only those written while the doctor
        named no condition (what its fixes resume from)."""
        return [c["path"] for c in reversed(self.checkpoints) if not (healthy and c["conditions"])]

    # -- checkpoint ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "latest": dict(self.latest), "iteration": self.iteration, "fresh": sorted(self.fresh),
            "first": {k: [list(p) for p in v] for k, v in self.first.items()},
            "last": {k: [list(p) for p in v] for k, v in self.last.items()},
            "rollbacks": list(self.rollbacks), "evaluations": list(self.evaluations),
            "best_checkpoint": self.best_checkpoint, "checkpoints": list(self.checkpoints),
            "conditions": list(self.conditions),
        }  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.latest = {k: float(v) for k, v in state.get("latest", {}).items()}
        self.iteration, self.fresh = int(state.get("iteration", 0)), set(state.get("fresh", ()))
        self.first = {k: [(int(i), float(v)) for i, v in p] for k, p in state.get("first", {}).items()}
        self.last = {k: [(int(i), float(v)) for i, v in p] for k, p in state.get("last", {}).items()}
        self.rollbacks = [dict(e) for e in state.get("rollbacks", [])]
        self.evaluations = [dict(e) for e in state.get("evaluations", [])]
        self.best_checkpoint = state.get("best_checkpoint")
        self.checkpoints = [dict(c) for c in state.get("checkpoints", [])]
        self.conditions = list(state.get("conditions", []))
