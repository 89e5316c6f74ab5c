"""Loggers that continue across resumes: CSV appends, W&B continues the same run."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter


class _AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer deletes an existing ``metrics.csv`` when it starts. This one keeps
    it: earlier rows stay, except those at or after the first step this process logs (a killed
    run's rows past its last checkpoint, which the resumed run logs again), so no iteration is
    missing or duplicated."""

    def __init__(self, log_dir: str) -> None:
        self._first_save = True
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        pass  # keep the earlier file

    def save(self) -> None:
        if not self.metrics:
            return  # (hyperparameter saves come here too, before any metric)
        if self._first_save and os.path.isfile(self.metrics_file_path):
            first = min(m["step"] for m in self.metrics)
            with open(self.metrics_file_path, newline="") as f:
                reader = csv.DictReader(f)
                keys = list(reader.fieldnames or [])
                rows = [
                    r for r in reader if r.get("step") not in (None, "") and int(float(r["step"])) < first
                ]
            with open(self.metrics_file_path, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=keys)
                writer.writeheader()
                writer.writerows(rows)
            self.metrics_keys = sorted(keys)
        self._first_save = False
        super().save()


class ResumableCSVLogger(CSVLogger):
    """``CSVLogger`` whose ``metrics.csv`` continues across resumes into the same directory."""

    @property
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


def wandb_has_key() -> bool:
    """An API key in the environment or in ~/.netrc (what ``wandb login`` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return "api.wandb.ai" in netrc.read_text()
    except OSError:
        return False


def wandb_logger(
    mode: str = "auto", save_dir: str = ".", resume_from: str | None = None, **kwargs: Any
) -> WandbLogger:
    """Lightning's WandbLogger with ``mode``: ``online``, ``offline``, ``disabled`` or ``auto``
    (the ``WANDB_MODE`` variable if set, else online when an API key is found, else offline:
    runs sync later with ``wandb sync <run dir>/wandb/offline-run-*``). ``resume_from``: the
    checkpoint a run resumes from; its W&B run id is reused (``resume="allow"``), so the resumed
    run continues the same W&B run, online or once synced."""
    if resume_from and not kwargs.get("id"):
        from ganlab.checkpoints import read_checkpoint

        run_id = read_checkpoint(resume_from)["ganlab"].get("wandb_id")
        if run_id:
            kwargs.update(id=run_id, resume="allow")
    if mode == "auto":
        mode = os.environ.get("WANDB_MODE") or ("online" if wandb_has_key() else "offline")
        # wandb itself sets WANDB_MODE to its legacy names once a run starts (multirun jobs).
        mode = {"dryrun": "offline", "run": "online"}.get(mode, mode)
    if mode not in ("online", "offline", "disabled"):
        raise ValueError(f"logger.wandb.mode must be auto, online, offline or disabled, got {mode!r}")
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return WandbLogger(save_dir=save_dir, offline=mode == "offline", mode=mode, **kwargs)
