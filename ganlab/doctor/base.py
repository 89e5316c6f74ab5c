"""What a condition is, and what it declares so that the doctor needs no case for it.

Pure Python on host floats, read once per tick: ``signals`` maps names to the values measured
at this tick (``train/d_acc_fake``, ``doctor/r_v``, ``train/ada_p``, ...; a signal measured less
often, as D's score on the probe slices, is absent from the ticks in between) from the run's
history (``ganlab.training.history``), plus the references each condition declares. A condition
*starts* after its start test held for ``patience`` consecutive ticks that could tell (so
patience counts measurements) past the warm-up, and *ends* after its clear test (a looser
threshold) held as long: no flapping around one threshold.

The start test is a list of ``Clause``s, all of which must hold; each clause's slack (how far its
value is from its threshold, in units of the threshold or of the scale it names) gives the
condition's *margin* at a tick, the largest slack of its clauses (< 0: the test held; 0: the
value is at a threshold, which a strict clause does not pass). The doctor keeps each condition's
closest approach, which says how near a healthy run came to a false alarm.

A condition declares:
  ``ticks``        when it is tested: ``log`` (each logging interval), ``evaluation`` (each FID
                   evaluation) or ``rollback`` (the divergence guard's rollbacks)
  ``references``   ``ref/<name>`` values it reads, each derived from the history (``Ago``,
                   ``WarmupMedian``)
  ``explained_by`` conditions that, while they hold, keep it from starting
  ``act``          what the autopilot (``callbacks.doctor.act=true``) does when it starts
  ``margin_ticks`` when its margin is read, if not at its ``ticks``
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
OPS = {">=": float.__ge__, ">": float.__gt__, "<=": float.__le__, "<": float.__lt__}


@dataclass(frozen=True)
class Clause:
    """One part of a start test: ``signal``'s ``value`` ``op`` ``threshold``. ``slack``: how far
    the value is from meeting it, in units of ``scale`` (default ``|threshold|``, or 1 for a
    threshold of 0); < 0 past the threshold, 0 at it."""

    signal: str
    value: float
    op: str  # one of OPS
    threshold: float
    scale: float = 0.0

    @property
    def holds(self) -> bool:
        return OPS[self.op](float(self.value), float(self.threshold))

    @property
    def slack(self) -> float:
        unit = self.scale or abs(self.threshold) or 1.0
        gap = self.threshold - self.value if self.op.startswith(">") else self.value - self.threshold
        return gap / unit


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
    """One failure. Subclasses set ``cause`` and implement ``clauses`` (its start test),
    ``clear``, ``evidence`` and ``fix``; ``clauses``/``clear`` return None when the signals
    cannot tell (a signal this tick does not have). ``name`` is its key in
    ``callbacks.doctor.conditions``."""

    name = ""
    cause = ""
    ticks = "log"
    margin_ticks = ""  # "" : its ``ticks``
    references: dict[str, Ago | WarmupMedian] = {}
    explained_by: tuple[str, ...] = ()

    def __init__(self, patience: int) -> None:
        self.patience = int(patience)  # consecutive ticks to start, and to end

    def clauses(self, s: dict[str, float]) -> list[Clause] | None:
        """The start test's clauses at this tick (a condition that overrides ``bad`` instead has
        no margin: None)."""
        return None

    def bad(self, s: dict[str, float]) -> bool | None:
        """The start test: every clause holds."""
        clauses = self.clauses(s)
        return None if clauses is None else all(c.holds for c in clauses)

    def margin(self, s: dict[str, float]) -> tuple[float, list[Clause]] | None:
        """(the largest slack of the clauses, the clauses) at this tick; None: cannot tell."""
        clauses = self.clauses(s)
        return None if not clauses else (max(c.slack for c in clauses), clauses)

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
    ticks its start (or, when active, its end) test has held; ``closest``: the tick its margin
    was smallest (``near``). Checkpointed by the doctor."""

    active: bool = False
    streak: int = 0
    since: tuple[int, float] | None = None
    first_bad: tuple[int, float] | None = None  # the tick the current streak began
    evidence: dict[str, float] = field(default_factory=dict)
    # {"iteration", "margin", "clauses": [[signal, value, op, threshold], ...]}
    closest: dict[str, Any] | None = None

    def near(self, cond: Condition, s: dict[str, float], iteration: int) -> float | None:
        """Reads the condition's margin at this tick and keeps the smallest; returns it."""
        m = cond.margin(s)
        if m is None or not math.isfinite(m[0]):
            return None
        if self.closest is None or m[0] < self.closest["margin"]:
            clauses = [[c.signal, round(c.value, 5), c.op, c.threshold] for c in m[1]]
            self.closest = {"iteration": iteration, "margin": round(m[0], 5), "clauses": clauses}
        return m[0]

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
                "first_bad": self.first_bad, "evidence": self.evidence, "closest": self.closest}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.active, self.streak = bool(state["active"]), int(state["streak"])
        self.since = tuple(state["since"]) if state.get("since") else None
        self.first_bad = tuple(state["first_bad"]) if state.get("first_bad") else None
        self.evidence = dict(state.get("evidence") or {})
        self.closest = state.get("closest")
