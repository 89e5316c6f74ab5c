"""Train a GAN: ``python -m ganlab.train [overrides]``.

A straight chain of ``hydra.utils.instantiate`` calls (as in ashleve/lightning-hydra-template):
data -> loss -> optimizer -> model -> callbacks -> loggers -> trainer -> fit.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

import ganlab.run.resolvers  # noqa: F401  (registers the resolvers used in conf/)
from ganlab.run import resume
from ganlab.run.directory import RunLock, check_writable, launch_rank, remove_stale_temps
from ganlab.utils.errors import report_user_errors

if TYPE_CHECKING:
    import lightning as L

    from ganlab.checkpoint.format import GanlabState

# torch and Lightning are imported inside the functions that train (5-8 s), not at module import:
# `ganlab-train --help` and Hydra's tab completion only compose configs.

log = logging.getLogger(__name__)


def finish_wandb(loggers: list | None = None) -> None:
    """Close the W&B run (once started, if it started in the background) so that the next job of
    a multirun starts its own."""
    from ganlab.loggers.wandb import GANWandbLogger

    for logger in loggers or []:
        if isinstance(logger, GANWandbLogger):
            logger.wait(start=False)  # a run that never logged anything needs no W&B run
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        run = wandb.run
        if run.offline:  # (W&B's own banner is off: screen.quiet)
            log.info("W&B: offline run %s; upload it with: wandb sync %s", run.id, run.sync_dir)
        else:
            log.info("W&B: %s", run.url)
        wandb.finish()


def build_data(cfg: DictConfig) -> L.LightningDataModule:
    """The data module; for a conditional run it also sets ``model.num_classes`` and
    ``model.class_names`` from the data's classes (cheap: no image is read), which the networks
    are built with and which a resume compares with the checkpoint's."""
    # k D updates per iteration each take a fresh real minibatch: the loader yields k of them.
    datamodule: L.LightningDataModule = instantiate(
        cfg.data, batches_per_iteration=int(cfg.model.get("d_steps_per_g", 1))
    )
    if cfg.data.get("conditional"):
        names = datamodule.class_names()
        with open_dict(cfg):
            cfg.model.num_classes, cfg.model.class_names = len(names), names
    return datamodule


def build(cfg: DictConfig, extra_callbacks: list | None = None, datamodule=None):
    """The instantiate chain: (datamodule, model, trainer). Shared by ganlab.bench."""
    from lightning.fabric.plugins.environments import SLURMEnvironment
    from lightning.pytorch.callbacks import ProgressBar

    from ganlab.callbacks.run_state import RunState
    from ganlab.loggers.wandb import GANWandbLogger, StartLoggers
    from ganlab.run.checks import check_model
    from ganlab.speed.ddp import resolve_strategy

    if datamodule is None:
        datamodule = build_data(cfg)
    loss = instantiate(cfg.loss)
    optimizer = instantiate(cfg.optimizer)
    model: L.LightningModule = instantiate(cfg.model, loss=loss, optimizer=optimizer)
    check_model(model)
    config = OmegaConf.to_container(cfg, resolve=True)  # stored in checkpoints (provenance)
    # The divergence guard and the run length come first in conf/callbacks (the guard looks before
    # any callback saves); callbacks.<name>=null turns an optional one off. RunState always runs:
    # it writes what a checkpoint keeps beside the weights.
    # (A node without _target_ is settings for a callback this callbacks= option does not have.)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c and "_target_" in c]
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values()]
    callbacks += [RunState(cfg.seed, config), StartLoggers(loggers), *(extra_callbacks or [])]
    if not cfg.trainer.get("enable_progress_bar", True):  # Lightning refuses a bar it was told to drop
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    t = cfg.trainer
    strategy = t.get("strategy", "auto")  # a name, or a config with _target_
    strategy = resolve_strategy(
        strategy if isinstance(strategy, str) else instantiate(strategy),
        t.get("accelerator", "auto"), t.get("devices", "auto"), t.get("num_nodes", 1),
        t.get("sync_batchnorm", False),
    )  # fmt: skip
    plugins = [instantiate(p) for p in t.get("plugins") or []]
    if SLURMEnvironment.detect():
        # ganlab.callbacks.preemption checkpoints at the iteration's end and requeues once the loggers are
        # closed; Lightning's own SLURM handlers would save in the middle of an iteration and
        # requeue while W&B is still closing.
        plugins.append(SLURMEnvironment(auto_requeue=False))
    trainer: L.Trainer = instantiate(
        t, callbacks=callbacks, logger=loggers or False, strategy=strategy, plugins=plugins or None
    )
    for logger in loggers:  # a W&B run starts once training runs (it needs a second): StartLoggers
        logger.defer(config) if isinstance(logger, GANWandbLogger) else logger.log_hyperparams(config)
    return datamodule, model, trainer


def resolve_ckpt_path(cfg: DictConfig) -> str | None:
    """``ckpt_path=last``: this run directory's newest intact checkpoint (``last.ckpt``, or the
    newest readable ``it*.ckpt`` when a kill or a full disk cut ``last.ckpt`` short) when there
    is one (a requeued SLURM job, a restarted command), else a fresh start. A requeued SLURM job
    (``SLURM_RESTART_COUNT`` > 0) resumes this way without being told."""
    from ganlab.run import slurm

    path = cfg.get("ckpt_path")
    if path is None and slurm.restart_count() > 0:
        log.info("SLURM job %s, attempt %d: resuming from this run's last checkpoint", slurm.job_id(),
                 slurm.restart_count() + 1)  # fmt: skip
        path = "last"
    if path == "last":
        from ganlab.checkpoint.format import newest_intact_checkpoint

        ckpt_dir = OmegaConf.select(cfg, "callbacks.checkpoint.dirpath", default=None)
        found = newest_intact_checkpoint(ckpt_dir or Path(cfg.paths.output_dir) / "checkpoints")
        path = str(found) if found else None
        log.info(
            "ckpt_path=last: %s", f"resuming from {path}" if path else "no checkpoint yet, starting fresh"
        )
    return path


def prepare_run_dir(cfg: DictConfig) -> RunLock | None:
    """On the launching process (rank 0): lock the run directory, check that the run's output
    and cache directories are writable, clear what killed runs left half-written, and only then
    write the composed configuration to ``.hydra/`` (Hydra's own writing is turned off in
    ``conf/hydra/default.yaml``: it happens before the task runs, so a second process refused by
    the lock would have overwritten the live run's files)."""
    if launch_rank() != 0:
        return None
    lock = RunLock(cfg.paths.output_dir).acquire()
    keys = ["hydra.run.dir", "callbacks.checkpoint.dirpath", "callbacks.evaluation.cache_dir"]
    keys += ["data.cache_dir"] if cfg.data.get("cache") else []
    dirs = {
        k: OmegaConf.select(cfg, "paths.output_dir" if k == "hydra.run.dir" else k, default=None)
        for k in keys
    }
    dirs = {k: d for k, d in dirs.items() if d}
    check_writable(dirs)
    remove_stale_temps(*dirs.values())
    write_hydra_files(cfg)
    return lock


def write_hydra_files(cfg: DictConfig) -> None:
    """``.hydra/config.yaml``, ``hydra.yaml`` and ``overrides.yaml`` in the run directory, as
    Hydra writes them."""
    from hydra.core.hydra_config import HydraConfig

    from ganlab.utils.atomic import write_text

    out = Path(cfg.paths.output_dir) / ".hydra"
    write_text(out / "config.yaml", OmegaConf.to_yaml(cfg))
    if HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
        write_text(out / "hydra.yaml", OmegaConf.to_yaml({"hydra": hydra_cfg}))
        write_text(out / "overrides.yaml", OmegaConf.to_yaml(hydra_cfg.overrides.task))


def train(cfg: DictConfig) -> dict[str, Any]:
    from ganlab.run.checks import validate_train
    from ganlab.run.console import quiet

    quiet()
    validate_train(cfg)
    ckpt_path = resolve_ckpt_path(cfg)
    with open_dict(cfg):
        cfg.ckpt_path = ckpt_path
    ckpt = state = None
    if ckpt_path:
        from ganlab.checkpoint.format import read_state

        ckpt, state = read_state(ckpt_path)
        if "holdout" not in (state.config.get("data") or {}):
            with open_dict(cfg):  # a run from before held-out images: it trained on all of them
                cfg.data.holdout = 0
    datamodule = build_data(cfg)  # before the resume check: it sets the class count of a conditional run
    changes = None
    if ckpt_path:
        now = OmegaConf.to_container(cfg, resolve=True)
        changes = resume.check(resume.compare(state.config, now), ckpt_path,
                               cfg.train.allow_resume_changes)  # fmt: skip
    lock = prepare_run_dir(cfg)
    if launch_rank() == 0:  # the whole configuration in train.log; its path on the screen (console.summary)
        config = OmegaConf.to_yaml(cfg, resolve=True)
        logging.getLogger("ganlab.configuration").info("configuration:\n%s", config)
    try:
        return _fit(cfg, datamodule, ckpt_path, ckpt, state, changes)
    finally:
        if lock is not None:
            lock.release()


def _fit(
    cfg: DictConfig,
    datamodule,
    ckpt_path: str | None,
    ckpt: dict | None,
    state: GanlabState | None,
    changes: list | None,
) -> dict[str, Any]:
    import lightning as L

    from ganlab.callbacks.preemption import Preemption
    from ganlab.loggers.wandb import backfill_wandb
    from ganlab.run.console import summary

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule, model, trainer = build(cfg, datamodule=datamodule)
    if launch_rank() == 0:
        if (
            trainer.world_size == 1
        ):  # the data's size on the first screen (Lightning's own calls then find it ready)
            datamodule.prepare_data()
            datamodule.setup("fit")
        for line in summary(cfg, datamodule, model, trainer):
            log.info(line)
    if ckpt is not None:
        model.restore_techniques(state.techniques)  # what the doctor's autopilot added mid-run
        resume.check_weights(model, ckpt, changes or [], ckpt_path)
        if launch_rank() == 0:
            resume.record(changes, ckpt_path, state.iterations, cfg.paths.output_dir, trainer.loggers)
            backfill_wandb(trainer.loggers, state.iterations)
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    finally:
        finish_wandb(trainer.loggers)
    for cb in trainer.callbacks:  # after the loggers closed: a requeue ends this process
        if isinstance(cb, Preemption):
            cb.after_run(trainer.is_global_zero)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    # With ddp_spawn the counters advanced in the spawned processes; the logged ones came back.
    iterations = int(metrics.get("train/iterations", model.progress.iterations))
    images = int(metrics.get("train/images_seen", model.progress.images_seen))
    log.info("finished after %d GAN iterations (%.1f kimg); checkpoints, samples and logs in %s",
             iterations, images / 1000, cfg.paths.output_dir)  # fmt: skip
    return {"metrics": metrics, "iterations": iterations, "output_dir": cfg.paths.output_dir}


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
@report_user_errors
def main(cfg: DictConfig) -> float | None:
    result = train(cfg)
    # Returned for sweepers that optimise a metric (hparams_search=fid_optuna: val/fid_10k).
    name = cfg.get("optimized_metric")
    if not name:
        return None
    if name not in result["metrics"]:
        raise KeyError(
            f"optimized_metric={name} was not logged by this run (logged: {sorted(result['metrics'])}); "
            "for FID enable callbacks.evaluation (every_n_iterations or at_end=true)"
        )
    return result["metrics"][name]


if __name__ == "__main__":
    main()
