"""Evaluate a checkpoint: ``python -m ganlab.evaluate ckpt=... n=10000``.

Generates ``n`` images with the checkpoint's generator (eval mode, fixed seed), compares them
with the cached real statistics of the run's dataset, prints the result as JSON and writes it
to ``out`` (default ``<ckpt>.eval.json``): FID, KID, IS (or why IS was skipped), the feature
network's identity, time taken and images/s.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

import ganlab.config  # noqa: F401
from ganlab.checkpoints import file_digest, load_generator
from ganlab.errors import UsageError, report_user_errors
from ganlab.metrics import GANMetrics, load_feature_net, to_uint8

log = logging.getLogger(__name__)


def require_count(cfg: DictConfig, *keys: str) -> None:
    """Each of ``keys`` must be a whole number >= 1 (image counts, batch sizes)."""
    for key in keys:
        v = cfg.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise UsageError(f"{key} must be a whole number >= 1, got {v!r} (e.g. {key}=64)")


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    require_count(cfg, "n", "batch_size")
    device = pick_device(cfg.device)
    gen = load_generator(cfg.ckpt, device)
    data_cfg = dict(gen.config["data"])
    if cfg.data_root:
        data_cfg["root"] = str(cfg.data_root)
    dm = instantiate(data_cfg)
    features = load_feature_net(cfg.feature, cfg.weights, device=device)
    metrics = GANMetrics(features, cfg.kid_subsets, cfg.kid_subset_size, inception_score=cfg.inception_score)

    t0 = time.perf_counter()
    metrics.load_or_compute_real_for(dm, cfg.n_real, cfg.batch_size, cfg.cache_dir)
    t_real = time.perf_counter() - t0

    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(cfg.seed)
    for start in range(0, cfg.n, cfg.batch_size):
        z = gen.sample_z(min(cfg.batch_size, cfg.n - start), generator=g)
        metrics.add_fake(to_uint8(gen(z)))
    if device.type == "cuda":
        torch.cuda.synchronize()
    t_fake = time.perf_counter() - t0
    result = metrics.compute()
    result.update(
        ckpt=str(Path(cfg.ckpt).resolve()),
        ckpt_sha256=file_digest(cfg.ckpt),
        iteration=gen.iterations,
        seed=cfg.seed,
        device=str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        seconds_real_stats=round(t_real, 3),
        seconds=round(t_fake, 3),  # generate n images + extract their features
        images_per_s=round(cfg.n / t_fake, 1),
    )
    out = Path(cfg.out) if cfg.out else Path(str(cfg.ckpt) + ".eval.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    log.info("wrote %s", out)
    return result


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
@report_user_errors
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
