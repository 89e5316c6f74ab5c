"""Preemption: SIGTERM or SIGUSR1 (Colab, SLURM, spot instances) -> a checkpoint at the next
iteration boundary, then a clean exit; on SLURM, the job is requeued and resumes from it.

The signal handler only sets a flag: the checkpoint is written between two iterations, where it
is as exact as the periodic ones (a resume continues bit-identically). A single process looks at
the flag after every iteration; under DDP the ranks agree on it every ``sync_every`` iterations
(one small all-reduce then), since a signal may reach only some of them.

SLURM: submit with ``#SBATCH --signal=SIGUSR1@90`` (the signal 90 s before the time limit) and
run ``srun python -m ganlab.train ... hydra.run.dir=outputs/run_$SLURM_JOB_ID ckpt_path=last``:
after the checkpoint rank 0 calls ``scontrol requeue $SLURM_JOB_ID`` (as Lightning's
``SLURMEnvironment(auto_requeue=True)`` does), and the requeued job, with the same job id and so
the same run directory, resumes from ``last.ckpt``. This replaces Lightning's own SIGUSR1
handler for the run, which would save in the middle of an iteration.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading

import lightning as L
import torch

from ganlab.cadence import due
from ganlab.callbacks import GANCheckpoint

log = logging.getLogger(__name__)


class Preemption(L.Callback):
    def __init__(self, signals: tuple[str, ...] = ("SIGTERM", "SIGUSR1"), sync_every: int = 10) -> None:
        self.signals = [getattr(signal, name) for name in signals if hasattr(signal, name)]
        self.sync_every = sync_every
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def _handler(self, signum, frame) -> None:
        self.received = signum

    def on_train_start(self, trainer, module) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for s in self.signals:
            self._previous[s] = signal.signal(s, self._handler)

    def teardown(self, trainer, module, stage: str) -> None:
        for s, previous in self._previous.items():
            signal.signal(s, previous)
        self._previous.clear()

    def _stop_requested(self, trainer, module) -> bool:
        if trainer.world_size == 1:
            return self.received is not None
        if not due(self.sync_every, module.iterations):
            return False
        flag = torch.tensor(float(self.received is not None), device=module.device)
        return bool(trainer.strategy.reduce(flag, reduce_op="sum") > 0)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if not self._stop_requested(trainer, module):
            return
        name = signal.Signals(self.received).name if self.received else "a signal on another rank"
        saved = None
        for cb in trainer.checkpoint_callbacks:
            if isinstance(cb, GANCheckpoint):
                cb.save_now(trainer)
                saved = cb.last_model_path or cb.best_model_path
        trainer.should_stop = True
        log.warning(
            "received %s: checkpoint at GAN iteration %d written to %s; stopping. Resume with ckpt_path=%s",
            name, module.iterations, saved, saved,
        )  # fmt: skip
        if self.received == getattr(signal, "SIGUSR1", None) and "SLURM_JOB_ID" in os.environ:
            if trainer.is_global_zero:
                job = os.environ.get("SLURM_ARRAY_JOB_ID", os.environ["SLURM_JOB_ID"])
                task = os.environ.get("SLURM_ARRAY_TASK_ID")
                job = f"{job}_{task}" if task else job
                result = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
                log.warning(
                    "requeued SLURM job %s: %s", job, result.returncode == 0 and "ok" or result.stderr
                )
