"""The StyleGAN2 experiments are the official StyleGAN2-ADA configurations: their networks have the
official parameter counts and their settings the official values; model=stylegan2 loss=stylegan2
composes at a tiny size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from ganlab.losses.stylegan2 import StyleGAN2Loss
from tests.conftest import ROOT, TINY_STYLEGAN2, compose_cfg

COUNTS = ROOT.parent / "shared" / "stylegan2_ada" / "param_counts.json"

# NVlabs/stylegan2-ada-pytorch train.py, cfg_specs (ref_gpus, kimg, mb, mbstd, fmaps, lrate, gamma,
# ema, ramp, map) and the cifar special cases set after it (pl_weight 0, style_mixing_prob 0, D
# architecture orig); the rest of the official loss (training/loss.py: pl_weight 2,
# style_mixing_prob 0.9) and loop (training/training_loop.py: G_reg_interval 4, D_reg_interval 16).
# Every configuration: Adam betas (0, 0.99), eps 1e-8; z_dim = w_dim = 512; channel_base fmaps x
# 32768, channel_max 512, num_fp16_res 4, conv_clamp 256; G architecture skip.
# fmt: off
COLUMNS = ("cfg", "counts", "res", "ref_gpus", "kimg", "mb", "mbstd", "fmaps", "lrate", "gamma", "ema",
           "ramp", "map", "pl_weight", "mixing", "d_arch")
OFFICIAL = {name: dict(zip(COLUMNS, row)) for name, row in {
    # experiment: (--cfg, counts key, res, ref_gpus, kimg, mb, mbstd, fmaps, lrate, gamma, ema, ramp, map,
    #              pl_weight, style_mixing_prob, D architecture)
    "stylegan2_cifar":    ("cifar", "cifar", 32, 2, 100000, 64, 32, 1, 0.0025, 0.01, 500, 0.05, 2,
                           0.0, 0.0, "orig"),
    "stylegan2_paper256": ("paper256", "paper256", 256, 8, 25000, 64, 8, 0.5, 0.0025, 1, 20, None, 8,
                           2.0, 0.9, "resnet"),
    "stylegan2_1024":     ("stylegan2", "stylegan2_1024", 1024, 8, 25000, 32, 4, 1, 0.002, 10, 10, None, 8,
                           2.0, 0.9, "resnet"),
}.items()}
# fmt: on


def compose(experiment: str, tmp_path: Path):
    """The experiment as a run would compose it; the conditional one with its 10 classes (which
    ganlab.train otherwise reads from the data), the image folders with a root (nothing is read)."""
    extra = ["model.num_classes=10"] if OFFICIAL[experiment]["cfg"] == "cifar" else [f"data.root={tmp_path}"]
    return compose_cfg([f"experiment={experiment}", *extra], tmp_path / "run")


@pytest.mark.parametrize("experiment", list(OFFICIAL))
def test_official_parameter_counts(experiment, tmp_path):
    if not COUNTS.exists():
        pytest.skip(f"the official parameter counts are not here ({COUNTS})")
    counts = json.loads(COUNTS.read_text())[OFFICIAL[experiment]["counts"]]
    cfg = compose(experiment, tmp_path)
    with torch.device("meta"):  # shapes only: fast, no memory
        G, D = instantiate(cfg.model.generator), instantiate(cfg.model.discriminator)
    assert sum(p.numel() for p in G.parameters()) == counts["G"]
    assert sum(p.numel() for p in D.parameters()) == counts["D"]
    assert (G.c_dim, G.img_resolution, D.img_resolution) == (
        counts["c_dim"],
        counts["img_resolution"],
        counts["img_resolution"],
    )


@pytest.mark.parametrize("experiment", list(OFFICIAL))
def test_official_settings(experiment, tmp_path):
    off, cfg = OFFICIAL[experiment], compose(experiment, tmp_path)
    for net in ("g", "d"):
        opt = cfg.optimizer[net]
        assert (opt.lr, list(opt.betas), opt.eps) == (off["lrate"], [0.0, 0.99], 1e-8), net
    loss = cfg.loss
    assert loss._target_ == "ganlab.losses.stylegan2.StyleGAN2Loss"
    assert (loss.r1_gamma, loss.r1_every, loss.pl_weight, loss.pl_every) == (
        off["gamma"],
        16,
        off["pl_weight"],
        4,
    )
    assert (loss.style_mixing_prob, loss.pl_decay, loss.pl_batch_shrink) == (off["mixing"], 0.01, 2)
    model = cfg.model
    assert (model.ema_half_life_kimg, model.ema_rampup) == (off["ema"], off["ramp"])
    # ganlab's batch is per device: the official total over its ref_gpus GPUs
    assert (cfg.data.batch_size * cfg.trainer.devices, cfg.trainer.devices) == (off["mb"], off["ref_gpus"])
    assert (cfg.data.image_size, cfg.train.max_kimg) == (off["res"], off["kimg"])
    assert (cfg.trainer.precision, cfg.trainer.max_epochs) == ("bf16-mixed", -1)  # the length is max_kimg
    G, D = model.generator, model.discriminator
    assert (model.nz, G.z_dim, G.w_dim, G.mapping_kwargs.num_layers) == (512, 512, 512, off["map"])
    synthesis = G.synthesis_kwargs
    assert (synthesis.channel_base, D.channel_base) == (int(off["fmaps"] * 32768),) * 2
    assert (synthesis.channel_max, D.channel_max, synthesis.num_fp16_res, D.num_fp16_res) == (512, 512, 4, 4)
    assert (synthesis.conv_clamp, D.conv_clamp, synthesis.architecture) == (256, 256, "skip")
    assert (D.architecture, D.epilogue_kwargs.mbstd_group_size) == (off["d_arch"], off["mbstd"])
    assert cfg.data.conditional == (off["cfg"] == "cifar")
    assert model.init is None


def test_tiny_stylegan2_composes_and_runs(tmp_path):
    """model=stylegan2 loss=stylegan2 with the project's tiny overrides (DCGAN's ngf/ndf left out)
    and small channels: the networks and the loss build and G -> D runs at 32 px."""
    cfg = compose_cfg(
        [*TINY_STYLEGAN2, "data=image_folder", f"data.root={tmp_path}", "loss=stylegan2"], tmp_path / "run"
    )
    G, D = instantiate(cfg.model.generator), instantiate(cfg.model.discriminator)
    loss = instantiate(cfg.loss)
    assert isinstance(loss, StyleGAN2Loss) and (loss.r1_gamma, loss.pl_weight, loss.style_mixing_prob) == (
        10,
        2,
        0.9,
    )
    assert (G.z_dim, G.img_resolution, D.img_resolution) == (cfg.model.nz, 32, 32) == (16, 32, 32)
    z = torch.randn(2, G.z_dim)
    with torch.no_grad():
        logits = D(loss.generate(G, z, None))
    assert logits.shape == (2, 1) and torch.isfinite(logits).all()
