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
from omegaconf import DictConfig, OmegaConf

import ganlab.config  # noqa: F401  (registers the resolvers used in conf/)

log = logging.getLogger(__name__)


def finish_wandb() -> None:
    """Close the W&B run so that the next job of a multirun starts its own."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()


def build(cfg: DictConfig, extra_callbacks: list | None = None):
    """The instantiate chain: (datamodule, model, trainer, loggers). Shared by ganlab.bench."""
    datamodule: L.LightningDataModule = instantiate(cfg.data)
    loss = instantiate(cfg.loss)
    optimizer = instantiate(cfg.optimizer)
    model: L.LightningModule = instantiate(cfg.model, loss=loss, optimizer=optimizer)
    model.run_config = OmegaConf.to_container(cfg, resolve=True)  # stored in checkpoints (provenance)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()] + (extra_callbacks or [])
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values()]
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
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
    log.info("finished after %d GAN iterations (%d images): %s", model.iterations, model.images_seen, metrics)
    return {"metrics": metrics, "iterations": model.iterations, "output_dir": cfg.paths.output_dir}


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
