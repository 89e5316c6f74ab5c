"""``logger=wandb``: W&B runs that continue across resumes, and every logged iteration reaching
W&B exactly once across kills and resumes.

W&B and kill -9: the W&B service buffers its run file (``run-<id>.wandb``) and writes it out
every ``x_transaction_log_flush_interval`` seconds (15 by default in wandb 0.31) or per 32 KiB
block, so a killed process loses the rows it logged last, checkpointed or not; and rows it logged
after its last checkpoint are logged again by the resumed run. So a resumed run first reads what
the earlier files of its W&B run hold (``wandb_history``), logs only the (iteration, metric)
pairs they lack, and restores the checkpointed iterations they lost from ``csv/metrics.csv``,
which is written through at every log (``backfill_wandb``). The result: each logged iteration
once in the union of the run's W&B files (what ``wandb sync`` uploads), the first record kept.
"""

from __future__ import annotations

import csv
import logging
import os
import struct
import threading
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import Logger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from ganlab.loggers.csv import ResumableCSVLogger
from ganlab.utils import forking

log = logging.getLogger(__name__)


def wandb_has_key() -> bool:
    """An API key in the environment or in ~/.netrc (what ``wandb login`` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return "api.wandb.ai" in netrc.read_text()
    except OSError:
        return False


def wandb_history(save_dir: str | Path, run_id: str) -> dict[int, set[str]]:
    """The metrics each earlier file of W&B run ``run_id`` under ``save_dir`` recorded, by
    ``trainer/global_step`` (the GAN iteration ganlab logs at): {iteration: {metric, ...}}.

    wandb 0.31 ships no reader for its run files, so this reads the format itself: LevelDB's log
    format (32 KiB blocks of records with a CRC-32 over type and data, records split across
    blocks as FIRST/MIDDLE/LAST) after a 7-byte ``:W&B`` header, each record a protobuf
    ``wandb_internal_pb2.Record``. A file cut short by a kill ends at its last whole record."""
    from wandb.proto import wandb_internal_pb2 as pb

    recorded: dict[int, set[str]] = {}
    for path in sorted(Path(save_dir, "wandb").glob(f"*-{run_id}/run-{run_id}.wandb")):
        for raw in _log_records(path.read_bytes()):
            record = pb.Record()
            try:
                record.ParseFromString(raw)
            except Exception:  # noqa: BLE001  (a damaged record: what follows is unreadable too)
                break
            if record.WhichOneof("record_type") != "history":
                continue
            # An item is a logged key (``key``, or the first element of ``nested_key``: an image
            # logged as ``samples/fixed_noise`` comes as its fields, ``[samples/fixed_noise, filenames]``...).
            items = {i.key or i.nested_key[0]: i.value_json for i in record.history.item}
            step = items.get("trainer/global_step")
            if step is None:
                continue
            keys = {k for k in items if not k.startswith("_") and k != "trainer/global_step"}
            recorded.setdefault(int(float(step)), set()).update(keys)
    return recorded


def _log_records(data: bytes, block: int = 32768) -> list[bytes]:
    """The whole records of a LevelDB-format log (after W&B's 7-byte header), up to the first
    truncated or corrupt one."""
    if data[:4] != b":W&B":
        return []
    out, pending, pos = [], b"", 7
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:  # zero padding to the end of the block
            pos += left
            continue
        chunk = data[pos + 7 : pos + 7 + length]
        if len(chunk) < length or zlib.crc32(chunk, zlib.crc32(bytes([kind]))) != crc:
            break
        pos += 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk  # FULL/FIRST start a record
        if kind in (1, 4):  # FULL/LAST end one
            out.append(pending)
            pending = b""
    return out


class GANWandbLogger(WandbLogger):
    """Lightning's ``WandbLogger`` that leaves out what the run's earlier files already hold
    (``recorded``, from ``wandb_history``): each (iteration, metric) is logged once; and whose
    run (``wandb.init``: about a second on a CPU, most of it W&B's service starting) need not
    delay the first iteration: ``defer`` keeps the run's configuration, ``start_in_background``
    starts the run in a thread once training runs (after the training loader's workers forked:
    forking while that thread holds a lock could hang a worker), and whatever needs the run (a
    log, its id in a checkpoint) waits for it, or starts it then (``wait``)."""

    def __init__(self, *args: Any, recorded: dict[int, set[str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _drop_anonymous(self)
        self.recorded = recorded or {}
        self._deferred: dict[str, Any] | None = None  # hyperparameters of a run not started yet
        self._starting: threading.Thread | None = None
        self._start_error: BaseException | None = None

    sweep: dict[str, str] = {}  # a sweep job's swept values: config columns sweep.<key>

    def defer(self, hyperparameters: dict[str, Any]) -> None:
        self._deferred = {**hyperparameters, **({"sweep": dict(self.sweep)} if self.sweep else {})}

    def start_in_background(self) -> None:
        if self._deferred is None or self._starting is not None or rank_zero_only.rank != 0:
            return
        self._starting = threading.Thread(target=self._start, name="wandb-init", daemon=True)
        forking.PENDING.add(self)
        self._starting.start()

    def _start(self) -> None:
        try:
            hyperparameters, self._deferred = self._deferred, None
            self.log_hyperparams(hyperparameters)  # creates the run (wandb.init), then its config
        except BaseException as e:  # noqa: BLE001  (raised where the run is next needed)
            self._start_error = e

    def wait(self, start: bool = True) -> None:
        """Until the run exists: join the thread that starts it, or (``start``) start it now."""
        starting = self._starting
        if starting is threading.current_thread():
            return
        if starting is not None:
            starting.join()
            self._starting = None
            forking.PENDING.discard(self)
        elif start and self._deferred is not None and rank_zero_only.rank == 0:
            self._start()
        if self._start_error is not None:
            error, self._start_error = self._start_error, None
            raise error

    @property
    def experiment(self):
        if (
            self._deferred is not None or self._starting is not None
        ) and self._starting is not threading.current_thread():
            return _StartingRun(self)  # Lightning touches `experiment` at setup: nothing to wait for there
        return WandbLogger.experiment.fget(self)

    @property
    def version(self) -> str | None:
        self.wait()
        return WandbLogger.version.fget(self)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        done = self.recorded.get(int(step)) if step is not None else None
        if done:
            metrics = {k: v for k, v in metrics.items() if k not in done}
            if not metrics:
                return
        super().log_metrics(metrics, step)


def _drop_anonymous(logger: WandbLogger) -> None:
    """Lightning's WandbLogger passes ``anonymous=None`` to ``wandb.init``, which wandb 0.31 answers
    with a deprecation warning at every start; the argument only reaches wandb through the logger's
    private ``_wandb_init`` (no public way to leave it out)."""
    if logger._wandb_init.get("anonymous", "unset") is None:
        del logger._wandb_init["anonymous"]


class _StartingRun:
    """What ``GANWandbLogger.experiment`` returns while the run is still starting: the first use of
    the run (``.log``, ``.id``, ...) waits for it and goes to it."""

    def __init__(self, logger: GANWandbLogger) -> None:
        self._logger = logger

    def __getattr__(self, name: str) -> Any:
        self._logger.wait()
        return getattr(WandbLogger.experiment.fget(self._logger), name)


def backfill_wandb(loggers: list[Logger], until: int) -> int:
    """After a resume to iteration ``until``: log to W&B the CSV rows up to ``until`` that the W&B
    run's earlier files lack (a kill lost them before they were written); returns how many rows."""
    wb = next((lg for lg in loggers if isinstance(lg, GANWandbLogger)), None)
    table = next((lg for lg in loggers if isinstance(lg, ResumableCSVLogger)), None)
    if wb is None or table is None or not os.path.isfile(table.metrics_file):
        return 0
    with open(table.metrics_file, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("step") not in (None, "")]
    restored = 0
    for row in rows:
        step = int(float(row["step"]))
        done = wb.recorded.setdefault(step, set())
        missing = {
            k: float(v) for k, v in row.items() if k != "step" and v not in (None, "") and k not in done
        }
        if step <= until and missing:
            wb.log_metrics(missing, step)
            done.update(missing)
            restored += 1
    if restored:
        log.info("W&B: %d logged iteration(s) lost by the killed run restored from csv/metrics.csv", restored)
    return restored


def sweep_values() -> tuple[str, dict[str, str]] | None:
    """In a Hydra multirun job: (the sweep's name, this job's values of the swept keys), else None.
    The swept keys are the command line's sweep overrides (``loss=bce,rasgan``, ``range(...)``),
    read from the sweep's ``multirun.yaml`` (what Hydra's basic sweeper saves), and an Optuna
    sweeper's ``hydra.sweeper.params``; their values are this job's own overrides."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    from omegaconf import OmegaConf

    from ganlab.utils.sweep import overrides_by_key, swept_keys

    hc = HydraConfig.get()
    keys = swept_keys(hc.sweep.dir, list((OmegaConf.select(hc, "sweeper.params") or {}).keys()))
    job = overrides_by_key(list(hc.overrides.task))
    return Path(hc.sweep.dir).name, {k: job[k] for k in keys if k in job}


def wandb_logger(
    mode: str = "auto",
    save_dir: str = ".",
    resume_from: str | None = None,
    task_name: str = "train",
    overrides: str = "",
    **kwargs: Any,
) -> WandbLogger:
    """Lightning's WandbLogger with ``mode``: ``online``, ``offline``, ``disabled`` or ``auto``
    (the ``WANDB_MODE`` variable if set, else online when an API key is found, else offline:
    runs sync later with ``wandb sync <run dir>/wandb/offline-run-*``). ``resume_from``: the
    checkpoint a run resumes from; its W&B run id is reused (``resume="allow"``), so the resumed
    run continues the same W&B run, online or once synced.

    Names: a single run is ``<task_name>-<overrides>``; the jobs of a sweep (``-m``, any launcher)
    share one group (``<task_name>-<sweep dir>``) and job type ``<task_name>``, are tagged
    ``sweep`` and their swept keys, are named by their swept values alone (``loss=rasgan,
    optimizer.d.lr=1e-4``) and carry them as config columns (``sweep.<key>``). ``name``,
    ``group``, ``job_type`` and ``tags`` set in the config win."""
    sweep = sweep_values()
    if sweep is not None:
        sweep_name, values = sweep
        kwargs["group"] = kwargs.get("group") or f"{task_name}-{sweep_name}"
        kwargs["job_type"] = kwargs.get("job_type") or task_name
        kwargs["tags"] = list(kwargs.get("tags") or []) or ["sweep", *values]
        kwargs["name"] = kwargs.get("name") or ",".join(f"{k}={v}" for k, v in values.items()) or task_name
    else:
        kwargs["name"] = kwargs.get("name") or (f"{task_name}-{overrides}" if overrides else task_name)
    if resume_from and not kwargs.get("id"):
        from ganlab.checkpoint.format import read_state

        run_id = read_state(resume_from)[1].wandb_id
        if run_id:
            kwargs.update(id=run_id, resume="allow")
    recorded = wandb_history(save_dir, kwargs["id"]) if kwargs.get("id") else {}
    if mode == "auto":
        mode = os.environ.get("WANDB_MODE") or ("online" if wandb_has_key() else "offline")
        # wandb itself sets WANDB_MODE to its legacy names once a run starts (multirun jobs).
        mode = {"dryrun": "offline", "run": "online"}.get(mode, mode)
    if mode not in ("online", "offline", "disabled"):
        raise ValueError(f"logger.wandb.mode must be auto, online, offline or disabled, got {mode!r}")
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    logger = GANWandbLogger(
        save_dir=save_dir, offline=mode == "offline", mode=mode, recorded=recorded, **kwargs
    )
    logger.sweep = sweep[1] if sweep is not None else {}
    return logger


class StartLoggers(L.Callback):
    """Starts deferred W&B runs (``GANWandbLogger.start_in_background``) at the first batch, once
    the training loader's workers exist."""

    def __init__(self, loggers: list[Logger]) -> None:
        self.loggers = [lg for lg in loggers if isinstance(lg, GANWandbLogger)]

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        for logger in self.loggers:
            logger.start_in_background()

    def on_fit_end(self, trainer, module) -> None:
        for logger in self.loggers:
            logger.wait()
