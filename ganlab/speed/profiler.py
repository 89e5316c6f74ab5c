"""A profiler that costs nothing when nothing is profiled.

Lightning wraps every hook call in ``trainer.profiler.profile(name)``, about a hundred times per
GAN iteration with ganlab's callbacks. Its default ``PassThroughProfiler`` inherits a
``@contextmanager`` ``profile`` that builds a generator on every call; here ``profile`` returns
one shared ``nullcontext``. ``trainer.profiler=simple`` (or ``advanced``, ``pytorch``) still
selects Lightning's real profilers.
"""

from __future__ import annotations

from contextlib import nullcontext

from lightning.pytorch.profilers import PassThroughProfiler

_NOTHING = nullcontext()


class NullProfiler(PassThroughProfiler):
    def profile(self, action_name: str) -> nullcontext:  # type: ignore[override]
        return _NOTHING
