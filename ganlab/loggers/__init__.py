"""Loggers that continue across resumes, one file per key of ``conf/logger``: ``csv.py``
(``metrics.csv``, appended to) and ``wandb.py`` (the same W&B run continued, each iteration
logged once); TensorBoard is Lightning's own.

``_target_: ganlab.loggers.ResumableCSVLogger`` and ``ganlab.loggers.wandb_logger`` (0.1's
paths) keep working.
"""

from ganlab.loggers.csv import ResumableCSVLogger
from ganlab.loggers.wandb import GANWandbLogger, wandb_logger

__all__ = ["GANWandbLogger", "ResumableCSVLogger", "wandb_logger"]
