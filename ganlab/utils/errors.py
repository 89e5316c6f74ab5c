"""Errors a user can fix, reported as one short message by the command-line tools:
``ganlab: <what is wrong> (<the setting>): <the fix>``."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any


class UsageError(ValueError):
    """A setting or argument has a value that cannot work; the message names it and the fix."""


class DatasetError(RuntimeError):
    """A dataset is missing, empty or unreadable; the message says what to do."""


class CheckpointError(ValueError):
    """A checkpoint path that cannot be used; the message names the file and what to pass."""


class ResumeConfigError(ValueError):
    """The resumed run's configuration contradicts its checkpoint's."""


class RunDirError(RuntimeError):
    """The run directory (or a cache directory) cannot be used; the message says why and what to do."""


class DivergenceError(FloatingPointError):
    """Training diverged; the message names the checkpoint to resume from."""


def bad_setting(what: str, key: str, value: Any, example: str) -> UsageError:
    """``<what>, got <value> (<key>): set e.g. <example>``."""
    return UsageError(f"{what}, got {value!r} ({key}): set e.g. {example}")


USER_ERRORS = (UsageError, DatasetError, CheckpointError, ResumeConfigError, RunDirError, DivergenceError)
"""The exception types whose message is the whole story (no traceback helps the user)."""


def user_message(error: BaseException) -> str | None:
    """The one-line message for a user error, or None for a bug (which keeps its traceback).
    Hydra's ``InstantiationException`` wraps what a constructor raised in three lines
    ("Error in call to target ...", the error, "full_key: ..."); the constructor's own error is
    the message, with the config node it came from."""
    from hydra.errors import InstantiationException

    if isinstance(error, InstantiationException):
        cause = error.__cause__
        node = str(error).rsplit("full_key:", 1)[-1].strip() if "full_key:" in str(error) else ""
        if isinstance(cause, USER_ERRORS):
            return str(cause)
        if isinstance(cause, (ValueError, TypeError)):
            return f"{cause} (in {node or 'the configuration'}): check the settings of {node or 'that node'}"
        return None
    if isinstance(error, USER_ERRORS):
        return str(error)
    return None


def report_user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a Hydra task function: a user error ends the process with ``ganlab: <message>`` on
    stderr and exit status 1, without a traceback (``HYDRA_FULL_ERROR=1`` shows it)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            message = user_message(e)
            if message is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(f"ganlab: {message}", file=sys.stderr)
            sys.exit(1)

    return wrapper
