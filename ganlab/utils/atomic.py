"""The one atomic-write helper: write beside the target, then rename over it.

A crash, a kill or a full disk mid-write leaves the previous file whole and, at worst, a
``.<name>.tmp<pid>`` file that ``ganlab.run.directory.remove_stale_temps`` clears at the next start.
(Lightning's own save stages files in the system temp dir and moves them, which becomes a
non-atomic copy when /tmp and the run directory are on different filesystems.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s directory; when the block ends without an error it
    is renamed onto ``path`` (atomic on POSIX), otherwise removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
