"""Work that must finish before the process forks: a W&B run starting in a background thread
(``ganlab.loggers.wandb``) would leave its children whatever lock that thread held at the fork.
The data layer calls ``settle`` before it starts data-loader workers; the loggers register what
is pending. A registry here, so that the data layer need not know about W&B."""

from __future__ import annotations

from typing import Protocol


class Pending(Protocol):
    def wait(self) -> None: ...


PENDING: set[Pending] = set()  # started in a background thread, not finished


def settle() -> None:
    """Wait for everything pending (before a process forks)."""
    for work in list(PENDING):
        work.wait()
