"""Train a GAN: ``python -m ganlab.train [overrides]``.

A straight line, as in ashleve/lightning-hydra-template: check the composed configuration; read
the checkpoint to resume from, once (``ganlab.run.resume.ResumePoint``); build the data; complete
the configuration with what the data and the checkpoint know (``run_config``: the classes of a
conditional run, settings an older checkpoint implies), read-only from there; check the resume;
build module and trainer (``build``); fit; report. Nothing later writes to the configuration.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

import ganlab.run.resolvers  # noqa: F401  (registers the resolvers used in conf/)
from ganlab.run import resume
from ganlab.run.directory import RunLock, check_writable, launch_rank, remove_stale_temps
from ganlab.utils.errors import report_user_errors

if TYPE_CHECKING:
    import lightning as L

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


def build_data(cfg: DictConfig, implied: dict[str, Any] | None = None) -> L.LightningDataModule:
    """The data module; ``implied``: ``data.*`` settings a resumed checkpoint fixes
    (``GanlabState.implied``)."""
    # k D updates per iteration each take a fresh real minibatch: the loader yields k of them.
    data = {k.split(".", 1)[1]: v for k, v in (implied or {}).items() if k.startswith("data.")}
    return instantiate(cfg.data, batches_per_iteration=int(cfg.model.get("d_steps_per_g", 1)), **data)


def run_config(cfg: DictConfig, datamodule, point: resume.ResumePoint | None = None) -> DictConfig:
    """The run's configuration, read-only: the composed one (left as it is) completed with what
    the data knows (a conditional run's ``model.num_classes`` and ``model.class_names``, cheap: no
    image is read), the checkpoint to resume from and what it implies. It is what the networks
    are built from, what checkpoints keep and what a resume is compared with."""
    known: dict[str, Any] = {"ckpt_path": point.path if point else None}  # ckpt_path=last resolved
    if cfg.data.get("conditional"):
        names = datamodule.class_names()
        known["model"] = {"num_classes": len(names), "class_names": names}
    for key, value in (point.state.implied if point else {}).items():
        _put(known, key, value)
    run = OmegaConf.merge(cfg, known)
    if cfg.model.get("init"):
        for key, node in network_architecture(run).items():
            OmegaConf.update(run, key, node, merge=False)
    OmegaConf.set_readonly(run, True)
    return run


def network_architecture(cfg: DictConfig) -> dict[str, Any]:
    """``model.init``: the official network pickle's G and D as this run's ``model.generator`` and
    ``model.discriminator`` (its stored constructor arguments) and ``model.nz``, after checking
    that the data fits it (resolution, channels, classes)."""
    from ganlab.models.stylegan2 import load_network_pkl
    from ganlab.utils.errors import UsageError

    nets = load_network_pkl(cfg.model.init, key="model.init")
    G, D = nets.get("G_ema", nets.get("G")), nets.get("D")
    if G is None or D is None:
        raise UsageError(
            f"model.init={cfg.model.init} holds {sorted(nets)}: fine-tuning needs G (or G_ema) and D"
        )
    shape = (cfg.data.image_size, cfg.data.channels, cfg.model.get("num_classes", 0))
    if (G.img_resolution, G.img_channels, G.c_dim) != shape:
        raise UsageError(
            f"model.init={cfg.model.init} is a {G.img_resolution} px, {G.img_channels}-channel network with "
            f"{G.c_dim} classes; this run's data is {shape[0]} px, {shape[1]} channels, {shape[2]} classes "
            f"(model.init): set data.image_size={G.img_resolution} data.channels={G.img_channels}"
            + (" data.conditional=true" if G.c_dim else " data.conditional=false")
        )
    return {
        "model.nz": G.z_dim,
        "model.generator": {"_target_": f"ganlab.models.stylegan2.{type(G).__name__}", **G.init_kwargs},
        "model.discriminator": {"_target_": f"ganlab.models.stylegan2.{type(D).__name__}", **D.init_kwargs},
    }


def _put(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[last] = value


def build(cfg: DictConfig, extra_callbacks: list | None = None, datamodule=None):
    """The instantiate chain: (datamodule, model, trainer) of a run configuration (``run_config``).
    Shared by ganlab.bench."""
    from lightning.fabric.plugins.environments import SLURMEnvironment
    from lightning.pytorch.callbacks import ProgressBar

    from ganlab.callbacks.run_state import RunState
    from ganlab.loggers.wandb import GANWandbLogger, StartLoggers
    from ganlab.run.checks import check_model
    from ganlab.training.ddp import resolve_strategy

    if datamodule is None:  # a composed configuration (ganlab.bench, scripts): made a run's here
        datamodule = build_data(cfg)
        cfg = run_config(cfg, datamodule)
    loss = instantiate(cfg.loss)
    optimizer = instantiate(cfg.optimizer)
    model: L.LightningModule = instantiate(cfg.model, loss=loss, optimizer=optimizer)
    check_model(model)
    config = OmegaConf.to_container(cfg, resolve=True)
    model.run_config = config  # what checkpoints keep (provenance, resume checks) and fixes are chosen from
    # The divergence guard and the run length come first in conf/callbacks (the guard looks before
    # any callback saves); callbacks.<name>=null turns an optional one off. RunState always runs:
    # it writes what a checkpoint keeps beside the weights.
    # (A node without _target_ is settings for a callback this callbacks= option does not have.)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c and "_target_" in c]
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values()]
    callbacks += [RunState(cfg.seed), StartLoggers(loggers), *(extra_callbacks or [])]
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
    point = resume.ResumePoint.read(cfg)  # the checkpoint to resume from, read once (or None)
    datamodule = build_data(cfg, point.state.implied if point else None)
    cfg = run_config(cfg, datamodule, point)  # read-only from here
    if point:
        point.check(OmegaConf.to_container(cfg, resolve=True), cfg.train.allow_resume_changes)
    lock = prepare_run_dir(cfg)
    if launch_rank() == 0:  # the whole configuration in train.log; its path on the screen (console.summary)
        config = OmegaConf.to_yaml(cfg, resolve=True)
        logging.getLogger("ganlab.configuration").info("configuration:\n%s", config)
    try:
        return fit(cfg, datamodule, point)
    finally:
        if lock is not None:
            lock.release()


def fit(cfg: DictConfig, datamodule, point: resume.ResumePoint | None) -> dict[str, Any]:
    """Build, restore what the checkpoint holds beside Lightning's own state, fit, report."""
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
    if point:
        point.restore(model, cfg.paths.output_dir, trainer.loggers, launch_rank() == 0)
        if launch_rank() == 0:
            backfill_wandb(trainer.loggers, point.state.iterations)
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=point.path if point else None)
    finally:
        finish_wandb(trainer.loggers)
    for cb in trainer.callbacks:  # after the loggers closed: a requeue or Ctrl-C's exit ends this process
        if isinstance(cb, Preemption):
            cb.after_run(trainer.is_global_zero)
    return report(cfg, trainer, model)


def report(cfg: DictConfig, trainer, model) -> dict[str, Any]:
    """The run's result: the last logged metrics, iterations, where everything went and the
    checkpoint it resumed from."""
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    # With ddp_spawn the counters advanced in the spawned processes; the logged ones came back.
    iterations = int(metrics.get("train/iterations", model.progress.iterations))
    images = int(metrics.get("train/images_seen", model.progress.images_seen))
    log.info("finished after %d GAN iterations (%.1f kimg); checkpoints, samples and logs in %s",
             iterations, images / 1000, cfg.paths.output_dir)  # fmt: skip
    return {"metrics": metrics, "iterations": iterations, "output_dir": cfg.paths.output_dir,
            "ckpt_path": cfg.ckpt_path}  # fmt: skip


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
