"""``logger=csv``: ``metrics.csv``, appended to across resumes."""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Mapping
from typing import Any

from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

from ganlab.utils.atomic import atomic_path, write_text

log = logging.getLogger(__name__)


class ResumableCSVLogger(Logger):
    """``<save_dir>/<name>/<version>/metrics.csv`` (one row per log call: ``step`` and the values)
    and ``hparams.yaml``, on Lightning's public ``Logger`` interface. Unlike Lightning's
    ``CSVLogger``, which deletes an existing ``metrics.csv`` when it starts, it continues the file
    across resumes into the same directory: earlier rows stay, except those at or after the first
    step this process logs (a killed run's rows past its last checkpoint, which the resumed run
    logs again), so no iteration is missing or repeated. Rows reach the file every
    ``flush_logs_every_n_steps`` log calls (1: at every log, so a killed run keeps its rows)."""

    def __init__(
        self, save_dir: str, name: str = "csv", version: str | int = "", flush_logs_every_n_steps: int = 1
    ) -> None:
        super().__init__()
        self._save_dir, self._name, self._version = str(save_dir), name, version
        self.flush_every = max(1, int(flush_logs_every_n_steps))
        self.pending: list[dict[str, Any]] = []
        self.hparams: dict[str, Any] = {}
        self._keys: list[str] | None = None  # the file's columns, once this process wrote it

    @property
    def name(self) -> str:
        return self._name

    @property
    def version(self) -> str | int:
        return self._version

    @property
    def save_dir(self) -> str:
        return self._save_dir

    @property
    def log_dir(self) -> str:
        return os.path.join(self._save_dir, self._name, str(self._version))

    @property
    def metrics_file(self) -> str:
        return os.path.join(self.log_dir, "metrics.csv")

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        import yaml

        self.hparams.update(params if isinstance(params, Mapping) else vars(params))
        os.makedirs(self.log_dir, exist_ok=True)
        write_text(os.path.join(self.log_dir, "hparams.yaml"), yaml.safe_dump(self.hparams, sort_keys=False))

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        self.pending.append({"step": step, **{k: float(v) for k, v in metrics.items()}})
        if len(self.pending) >= self.flush_every:
            self.save()

    @rank_zero_only
    def save(self) -> None:
        if not self.pending:
            return
        new = {k for row in self.pending for k in row}
        if self._keys is not None and new <= set(self._keys):  # the common case: append the rows
            with open(self.metrics_file, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=self._keys).writerows(self.pending)
        else:
            self._rewrite(new)
        self.pending.clear()

    def _rewrite(self, new: set[str]) -> None:
        """The whole file, atomically: at this process's first write (an earlier run's rows stay,
        but those from this run's first step on go) or when a new column appears."""
        kept: list[dict[str, Any]] = []
        keys = ["step"]
        if os.path.isfile(self.metrics_file):
            with open(self.metrics_file, newline="") as f:
                reader = csv.DictReader(f)
                keys, kept = list(reader.fieldnames or keys), list(reader)
            steps = [row["step"] for row in self.pending if row["step"] is not None]
            if self._keys is None and steps:
                kept = [
                    r for r in kept if r.get("step") not in (None, "") and int(float(r["step"])) < min(steps)
                ]
        self._keys = keys + sorted(new - set(keys))
        os.makedirs(self.log_dir, exist_ok=True)
        with atomic_path(self.metrics_file) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self._keys)
            writer.writeheader()
            writer.writerows(kept + self.pending)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.save()
