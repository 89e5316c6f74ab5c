"""Python API for notebooks and scripts: the same runs as the command line, without a Hydra app.

    from ganlab import api
    result = api.fit(["data=fashion_mnist", "trainer.max_epochs=1"], output_dir="runs/fmnist")
    gen = api.load_generator("runs/fmnist/checkpoints/last.ckpt")
    images = gen(gen.sample_z(16))  # (16, C, H, W) in [-1, 1]

Composing ``conf/train.yaml`` outside ``@hydra.main`` fails on the ``${hydra:...}``
interpolations ("HydraConfig was not set"); ``compose`` sets what a Hydra app would (the
output directory, the working directory, the job's override string) before they are resolved.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import ganlab.run.resolvers  # noqa: F401  (resolvers)
from ganlab.checkpoint.generator import LoadedGenerator
from ganlab.checkpoint.generator import load_generator as _load_generator

CONFIG_DIR = Path(__file__).resolve().parent / "conf"


def compose(
    overrides: Sequence[str] = (), output_dir: str | Path | None = None, config_name: str = "train"
) -> DictConfig:
    """The configuration ``python -m ganlab.<config_name> *overrides`` would run with, its run
    directory ``output_dir`` (default ``outputs/api/<date>_<time>``)."""
    overrides = list(overrides)
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        cfg = hydra_compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    out = Path(output_dir or Path("outputs") / "api" / time.strftime("%Y-%m-%d_%H-%M-%S")).resolve()
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(out)
        cfg.hydra.runtime.cwd = os.getcwd()
        cfg.hydra.job.override_dirname = ",".join(overrides) or "api"
        if "paths" in cfg:
            cfg.paths.output_dir = str(out)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]  # a Hydra app's task function gets the config without it, too
    return cfg


def fit(overrides: Sequence[str] = (), output_dir: str | Path | None = None) -> dict[str, Any]:
    """Train as ``python -m ganlab.train *overrides`` does; returns the logged metrics, the
    number of GAN iterations and the run directory."""
    from ganlab.train import train

    return train(compose(overrides, output_dir))


def load_generator(path: str | Path, device: str = "cpu") -> LoadedGenerator:
    """The generator of a checkpoint (``G_ema`` when the run kept one), in eval mode, with its
    prior: ``gen(gen.sample_z(n))`` gives n images in [-1, 1]."""
    return _load_generator(path, device, key="path")
