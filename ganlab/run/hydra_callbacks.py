"""Hydra callbacks: checks that must run before Hydra itself touches the run directory."""

from __future__ import annotations

import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ganlab.run.directory import check_writable
from ganlab.utils.errors import RunDirError


class CheckRunDir(Callback):
    """The run (or sweep) directory must be writable: Hydra creates it before the task starts,
    and would fail there with its own traceback. One ``ganlab:`` line and exit status 1 instead."""

    def _check(self, path: str, key: str) -> None:
        try:
            check_writable({key: path})
        except RunDirError as e:
            print(f"ganlab: {e}", file=sys.stderr)
            sys.exit(1)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config.hydra.sweep.dir, "hydra.sweep.dir")
