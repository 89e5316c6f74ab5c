"""Errors a user can fix, reported as one short message by the command-line tools."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any


class UsageError(ValueError):
    """A setting or argument has a value that cannot work; the message names it and the fix."""


def user_errors() -> tuple[type[BaseException], ...]:
    """The exception types whose message is the whole story (no traceback helps the user)."""
    from hydra.errors import InstantiationException

    from ganlab.checkpoints import CheckpointError
    from ganlab.data.datasets import DatasetError
    from ganlab.guard import DivergenceError
    from ganlab.resume import ResumeConfigError
    from ganlab.rundir import RunDirError

    return (UsageError, DatasetError, CheckpointError, ResumeConfigError, RunDirError, DivergenceError,
            InstantiationException)  # fmt: skip


def report_user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a Hydra task function: a user error ends the process with ``ganlab: <message>`` on
    stderr and exit status 1, without a traceback (``HYDRA_FULL_ERROR=1`` shows it)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except user_errors() as e:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(f"ganlab: {e}", file=sys.stderr)
            sys.exit(1)

    return wrapper
