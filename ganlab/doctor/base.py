"""What a condition is, and what it declares so that the doctor needs no case for it.

Pure Python on host floats, read once per tick: ``signals`` maps names to the tick's values
(``train/d_acc_fake``, ``doctor/r_v``, ``train/ada_p``, ...) from the run's history
(``ganlab.training.history``), plus the references each condition declares. A condition
*starts* after its bad test held for ``patience`` consecutive ticks past the warm-up, and *ends*
after its clear test (a looser threshold) held as long: no flapping around one threshold.

A condition declares:
  ``ticks``        when it is tested: ``log`` (each logging interval), ``evaluation`` (each FID
                   evaluation) or ``rollback`` (the divergence guard's rollbacks)
  ``references``   ``ref/<name>`` values it reads, each derived from the history (``Ago``,
                   ``WarmupMedian``)
  ``explained_by`` conditions that, while they hold, keep it from starting
  ``act``          what the autopilot (``callbacks.doctor.act=true``) does when it starts
Its thresholds and patience have one home: ``conf/callbacks/default.yaml`` (``callbacks.doctor.
conditions``), which also names its class; a new condition is a class and an entry there.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from ganlab.doctor.fixes import Context

TICKS = ("log", "evaluation", "rollback")


@dataclass(frozen=True)
class Ago:
    """``signal``'s value ``patience`` ticks before the newest one (the oldest of the last
    ``patience + 1`` values before this tick; the oldest there is early in the run): is it still
    rising, or not growing?"""

    signal: str

    def value(self, history, cond: Condition, warmup: int, iteration: int) -> float | None:
        window = history.recent(self.signal, cond.patience + 1, before=iteration)
        return window[0] if window else None


@dataclass(frozen=True)
class WarmupMedian:
    """The median of ``signal`` over the warm-up: its level early in the run."""

    signal: str

    def value(self, history, cond: Condition, warmup: int, iteration: int) -> float | None:
        values = history.early(self.signal, warmup)
        return statistics.median(values) if values else None


class Condition:
    """One failure. Subclasses set ``cause`` and implement ``bad``, ``clear``, ``evidence`` and
    ``fix``; ``bad``/``clear`` return None when the signals cannot tell (a signal this run does
    not have). ``name`` is its key in ``callbacks.doctor.conditions``."""

    name = ""
    cause = ""
    ticks = "log"
    references: dict[str, Ago | WarmupMedian] = {}
    explained_by: tuple[str, ...] = ()

    def __init__(self, patience: int) -> None:
        self.patience = int(patience)  # consecutive ticks to start, and to end

    def bad(self, s: dict[str, float]) -> bool | None:
        raise NotImplementedError

    def clear(self, s: dict[str, float]) -> bool | None:
        raise NotImplementedError

    def evidence(self, s: dict[str, float]) -> dict[str, float]:
        raise NotImplementedError

    def fix(self, ctx: Context) -> list[str]:
        raise NotImplementedError

    def describe(self, evidence: dict[str, float]) -> str:
        return ", ".join(f"{k} {v:.3g}" for k, v in evidence.items())

    def act(self, trainer, module, ctx: Context) -> str | None:
        """The autopilot's action when this condition starts, said in a few words; None: none."""
        return None


def have(s: dict[str, float], *names: str) -> bool:
    return all(n in s and math.isfinite(s[n]) for n in names)


@dataclass
class Tracker:
    """One condition's hysteresis: ``active`` since ``since`` (iteration, kimg), the consecutive
    ticks its start (or, when active, its end) test has held. Checkpointed by the doctor."""

    active: bool = False
    streak: int = 0
    since: tuple[int, float] | None = None
    first_bad: tuple[int, float] | None = None  # the tick the current streak began
    evidence: dict[str, float] = field(default_factory=dict)

    def step(self, cond: Condition, s: dict[str, float], at: tuple[int, float]) -> str | None:
        """One tick: returns "start", "end" or None."""
        verdict = cond.clear(s) if self.active else cond.bad(s)
        if verdict is None:  # this tick cannot tell (a signal it lacks, or a NaN): wait
            return None
        if not verdict:
            self.streak, self.first_bad = 0, None
            return None
        if self.streak == 0:
            self.first_bad = at
        self.streak += 1
        if not self.active:
            self.evidence = cond.evidence(s)
        if self.streak < cond.patience:
            return None
        self.streak = 0
        if self.active:
            self.active, self.since = False, None
            return "end"
        self.active, self.since = True, self.first_bad
        return "start"

    def state_dict(self) -> dict[str, Any]:
        return {"active": self.active, "streak": self.streak, "since": self.since,
                "first_bad": self.first_bad, "evidence": self.evidence}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.active, self.streak = bool(state["active"]), int(state["streak"])
        self.since = tuple(state["since"]) if state.get("since") else None
        self.first_bad = tuple(state["first_bad"]) if state.get("first_bad") else None
        self.evidence = dict(state.get("evidence") or {})
