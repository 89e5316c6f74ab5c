"""Helpers every layer may use; they import nothing else of ganlab: atomic writes, cache keys
and digests, pixels, durations, user errors, the "every N" cadence, what waits before a fork,
and the table of paths that moved in 0.2."""
