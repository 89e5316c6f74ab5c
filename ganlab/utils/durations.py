"""Durations as people read them (progress lines, ETAs)."""

from __future__ import annotations

import math


def duration(seconds: float) -> str:
    """``3725.4`` -> ``1:02:05``; ``?`` for an unknown (infinite) duration."""
    if not math.isfinite(seconds):
        return "?"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
