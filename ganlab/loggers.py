"""Logger factories."""

from __future__ import annotations

import os
from pathlib import Path

from lightning.pytorch.loggers import WandbLogger


def wandb_has_key() -> bool:
    """An API key in the environment or in ~/.netrc (what ``wandb login`` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return "api.wandb.ai" in netrc.read_text()
    except OSError:
        return False


def wandb_logger(mode: str = "auto", save_dir: str = ".", **kwargs) -> WandbLogger:
    """Lightning's WandbLogger with ``mode``: ``online``, ``offline``, ``disabled`` or ``auto``
    (the ``WANDB_MODE`` variable if set, else online when an API key is found, else offline:
    runs sync later with ``wandb sync <run dir>/wandb/offline-run-*``)."""
    if mode == "auto":
        mode = os.environ.get("WANDB_MODE") or ("online" if wandb_has_key() else "offline")
        # wandb itself sets WANDB_MODE to its legacy names once a run starts (multirun jobs).
        mode = {"dryrun": "offline", "run": "online"}.get(mode, mode)
    if mode not in ("online", "offline", "disabled"):
        raise ValueError(f"logger.wandb.mode must be auto, online, offline or disabled, got {mode!r}")
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return WandbLogger(save_dir=save_dir, offline=mode == "offline", mode=mode, **kwargs)
