"""The one "every N iterations" rule, shared by logging, sample grids, checkpoints, evaluation and
the finiteness check, so that they all fire on the same iterations."""

from __future__ import annotations


def due(every: int | None, iteration: int) -> bool:
    """True after iteration ``iteration`` (counted from 1) when it is a multiple of ``every``;
    never when ``every`` is 0 or None (the switch that turns a periodic action off)."""
    return bool(every) and every > 0 and iteration > 0 and iteration % every == 0
