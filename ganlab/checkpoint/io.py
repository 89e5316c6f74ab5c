"""Checkpoint files written atomically: ``trainer.plugins`` (``conf/trainer``) saves through
``AtomicCheckpointIO``."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ganlab.utils.atomic import atomic_path
from ganlab.utils.errors import CheckpointError

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Each checkpoint written through ``ganlab.utils.atomic.atomic_path`` (a temporary file beside
    it, fsynced, then renamed over it): a crash or a full disk mid-save leaves the previous file
    whole, and a failed write stops the run with one message saying so. Remote paths
    (``s3://`` ...) go through Lightning's fsspec path unchanged."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        try:
            with atomic_path(path) as tmp, open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
        except (OSError, RuntimeError) as e:  # torch.save reports a full disk as a RuntimeError
            raise CheckpointWriteError(path, e) from None


class CheckpointWriteError(CheckpointError):
    """A checkpoint could not be written (full disk, quota, permissions); the previous one is intact."""

    def __init__(self, path: str | Path, error: BaseException) -> None:
        path = Path(path)
        try:
            free = f"{shutil.disk_usage(path.parent).free / 2**20:.1f} MiB free there"
        except OSError:
            free = "free space unknown"
        reason = (
            error.strerror if isinstance(error, OSError) and error.strerror else str(error).splitlines()[0]
        )
        super().__init__(
            f"could not write the checkpoint '{path}' ({reason}; {free}) (callbacks.checkpoint.dirpath): "
            "free disk space or point it at another disk, then resume with ckpt_path=last; the previous "
            "checkpoint is intact"
        )
