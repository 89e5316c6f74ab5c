"""Preemption: SIGTERM, SIGUSR1 or SIGUSR2 (Colab, SLURM, spot instances, Hydra's submitit
launcher) -> a checkpoint at the next iteration boundary, then a clean exit; on SLURM, the job is
requeued and resumes from it. Ctrl-C (SIGINT; a notebook's interrupt) does the same: the first
one checkpoints at the iteration's end and stops with the command that resumes (exit status 130,
as a shell reports Ctrl-C, so a sweep or script stops too); a second one stops at once
(KeyboardInterrupt, without a checkpoint).

The signal handler only sets a flag: the checkpoint is written between two iterations, where it
is as exact as the periodic ones (a resume continues bit-identically). A single process looks at
the flag after every iteration; under DDP the ranks agree on it every ``sync_every`` iterations
(one small all-reduce then), since a signal may reach only some of them. Data-loader workers
ignore these signals (``ganlab.data.loader.ignore_stop_signals``): a signal sent to the whole
process group, as SLURM, ``timeout`` and Ctrl-C send it, reaches them too.

Requeue, once the run has stopped and its loggers are closed (``after_run``, called by
``ganlab.train``; a requeue that stops the job while W&B is still closing fails it):
- under Hydra's submitit launcher (``hydra/launcher=slurm``), submitit's own handler of the signal
  (SIGUSR2, ``--signal=USR2@signal_delay_s``), which the run replaced while it trained, is called:
  it requeues the job through submitit, which reruns the same job, resuming from ``last.ckpt``;
- under a plain ``sbatch --signal=SIGUSR1@90`` (or USR2) script, rank 0 runs
  ``scontrol requeue $SLURM_JOB_ID`` (as Lightning's ``SLURMEnvironment(auto_requeue=True)``
  does); the requeued job has the same job id, so the same run directory and run lock.
SIGTERM (``scancel``, the time limit itself) checkpoints and stops without a requeue. A requeued
job (``SLURM_RESTART_COUNT`` > 0) resumes from its run directory's ``last.ckpt`` by itself
(``ganlab.run.resume.resolve_ckpt_path``). This replaces Lightning's own SIGUSR1 handler for the run,
which would save in the middle of an iteration.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

import lightning as L
import torch

from ganlab.checkpoint.saver import CadenceSaver
from ganlab.run import slurm
from ganlab.utils.every_n import due

log = logging.getLogger(__name__)

REQUEUE_SIGNALS = ("SIGUSR1", "SIGUSR2")  # sent by SLURM ahead of a time limit: requeue after the checkpoint


class Preemption(L.Callback):
    def __init__(
        self, signals: tuple[str, ...] = ("SIGTERM", "SIGUSR1", "SIGUSR2", "SIGINT"), sync_every: int = 10
    ) -> None:
        self.signals = [getattr(signal, name) for name in signals if hasattr(signal, name)]
        self.sync_every = sync_every
        self.received: int | None = None
        self._previous: dict[int, object] = {}
        self._handed_back: dict[int, object] = {}  # the handlers restored at teardown, for after_run

    def _handler(self, signum, frame) -> None:
        if signum == signal.SIGINT:
            if self.received == signal.SIGINT:  # the second Ctrl-C: stop now
                signal.signal(signal.SIGINT, signal.default_int_handler)
                raise KeyboardInterrupt
            # A handler may not log (the logging lock may be held by the interrupted code): write.
            sys.stderr.write(
                "\nCtrl-C: stopping after this iteration with a checkpoint (Ctrl-C again to stop at once)\n"
            )
        self.received = signum

    def on_train_start(self, trainer, module) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for s in self.signals:
            self._previous[s] = signal.signal(s, self._handler)

    def teardown(self, trainer, module, stage: str) -> None:
        for s, previous in self._previous.items():
            # USR1/USR2 warn of a coming time limit and kill by default: one that arrives after
            # the run finished must not turn a finished job into a failed one (exit status 138).
            late_warning = previous == signal.SIG_DFL and signal.Signals(s).name in REQUEUE_SIGNALS
            signal.signal(s, signal.SIG_IGN if late_warning else previous)
        self._handed_back = dict(self._previous)
        self._previous.clear()

    def _stop_requested(self, trainer, module) -> bool:
        if trainer.world_size == 1:
            return self.received is not None
        if not due(self.sync_every, module.progress.iterations):
            return False
        # Every rank learns which signal stopped the run, also where it did not arrive (rank 0 requeues).
        flag = torch.tensor(float(self.received or 0), device=module.device)
        received = int(trainer.strategy.reduce(flag, reduce_op="max"))
        if received:
            self.received = received
        return received > 0

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if not self._stop_requested(trainer, module):
            return
        name = signal.Signals(self.received).name
        name = "Ctrl-C (SIGINT)" if name == "SIGINT" else name
        saved = None
        for cb in trainer.checkpoint_callbacks:
            if isinstance(cb, CadenceSaver):
                cb.save_now(trainer)
                saved = cb.last_model_path
        trainer.should_stop = True
        log.warning(
            "received %s: checkpoint at GAN iteration %d written to %s; stopping. Resume with ckpt_path=%s",
            name, module.progress.iterations, saved, saved,
        )  # fmt: skip

    @property
    def interrupted(self) -> bool:
        """The run stopped for Ctrl-C (its checkpoint written)."""
        return self.received == signal.SIGINT

    def after_run(self, is_global_zero: bool) -> None:
        """Once training stopped for a signal and the loggers are closed: requeue the job, or for
        Ctrl-C exit with status 130."""
        if self.interrupted:
            raise SystemExit(130)
        if self.received is None or signal.Signals(self.received).name not in REQUEUE_SIGNALS:
            return
        wandb = sys.modules.get("wandb")
        if wandb is not None:
            # The requeue stops this job's processes, W&B's service among them: shut it down first,
            # or W&B's exit hook fails on the lost connection and the attempt exits 1.
            wandb.teardown()
        previous = self._handed_back.get(self.received)
        if callable(previous):  # e.g. submitit's handler: it requeues through submitit and exits
            name = signal.Signals(self.received).name
            log.warning("handing %s to the handler installed before the run (%s)", name, previous)
            previous(self.received, None)
        elif slurm.job_id() and is_global_zero:
            slurm.requeue()
