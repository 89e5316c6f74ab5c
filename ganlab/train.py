"""Train a GAN: ``python -m ganlab.train [overrides]``.

A straight chain of ``hydra.utils.instantiate`` calls (as in ashleve/lightning-hydra-template):
data -> loss -> optimizer -> model -> callbacks -> loggers -> trainer -> fit.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ProgressBar
from omegaconf import DictConfig, OmegaConf

import ganlab.config  # noqa: F401  (registers the resolvers used in conf/)
from ganlab.strategy import resolve_strategy

log = logging.getLogger(__name__)


def finish_wandb() -> None:
    """Close the W&B run so that the next job of a multirun starts its own."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()


def build(cfg: DictConfig, extra_callbacks: list | None = None):
    """The instantiate chain: (datamodule, model, trainer, loggers). Shared by ganlab.bench."""
    # k D updates per iteration each take a fresh real minibatch: the loader yields k of them.
    datamodule: L.LightningDataModule = instantiate(
        cfg.data, batches_per_iteration=int(cfg.model.get("d_steps_per_g", 1))
    )
    loss = instantiate(cfg.loss)
    optimizer = instantiate(cfg.optimizer)
    model: L.LightningModule = instantiate(cfg.model, loss=loss, optimizer=optimizer)
    model.run_config = OmegaConf.to_container(cfg, resolve=True)  # stored in checkpoints (provenance)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()] + (extra_callbacks or [])
    if not cfg.trainer.get("enable_progress_bar", True):  # Lightning refuses a bar it was told to drop
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values()]
    t = cfg.trainer
    strategy = t.get("strategy", "auto")  # a name, or a config with _target_
    strategy = resolve_strategy(
        strategy if isinstance(strategy, str) else instantiate(strategy),
        t.get("accelerator", "auto"), t.get("devices", "auto"), t.get("num_nodes", 1),
        t.get("sync_batchnorm", False),
    )  # fmt: skip
    trainer: L.Trainer = instantiate(t, callbacks=callbacks, logger=loggers or False, strategy=strategy)
    for logger in loggers:
        logger.log_hyperparams(model.run_config)
    return datamodule, model, trainer


def train(cfg: DictConfig) -> dict[str, Any]:
    if cfg.get("ckpt_path") and not Path(cfg.ckpt_path).is_file():
        raise FileNotFoundError(
            f"ckpt_path={cfg.ckpt_path} does not exist. Pass a checkpoint written by ganlab, e.g. "
            "ckpt_path=outputs/train/runs/<date>/checkpoints/last.ckpt"
        )
    L.seed_everything(cfg.seed, workers=True)
    datamodule, model, trainer = build(cfg)
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    finally:
        finish_wandb()
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    # With ddp_spawn the counters advanced in the spawned processes; the logged ones came back.
    iterations = int(metrics.get("train/iterations", model.iterations))
    images = int(metrics.get("train/images_seen", model.images_seen))
    log.info("finished after %d GAN iterations (%d images): %s", iterations, images, metrics)
    return {"metrics": metrics, "iterations": iterations, "output_dir": cfg.paths.output_dir}


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
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
