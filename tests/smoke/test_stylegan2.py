"""StyleGAN2 as users run it: a tiny model=stylegan2 run with both lazy terms resumed exactly,
fine-tuning from an official network pickle (model.init), and ganlab-generate / ganlab-evaluate
on such a pickle (truncation, style mixing, noise), a malicious pickle refused by the command."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import ROOT, TINY_STYLEGAN2, compose_cfg, load, rng_images

ORACLE = ROOT.parent / "shared" / "stylegan2_ada"
PKL = ORACLE / "sg2ada_cond32_rgb.pkl"  # 32 px RGB, 10 classes, z 64 (its README)
needs_oracle = pytest.mark.skipif(
    not PKL.is_file(), reason="../shared/stylegan2_ada is not beside the checkout"
)
LAZY = [
    "loss=stylegan2",
    "loss.r1_every=2",
    "loss.pl_every=2",
    "loss.r1_gamma=1",
    "model.ema_half_life_kimg=1",
]


@pytest.fixture(scope="module")
def ten_classes(tmp_path_factory) -> Path:
    """An image folder of 10 class sub-folders, 32 px RGB: the oracle pickle's data shape."""
    root = tmp_path_factory.mktemp("ten")
    for i, a in enumerate(rng_images(40, 32, seed=3)):
        (root / f"c{i % 10}").mkdir(exist_ok=True)
        Image.fromarray(a).save(root / f"c{i % 10}" / f"{i:03d}.png")
    return root


def train_sg2(overrides: list[str], out: Path, data: Path):
    from ganlab.train import train

    return train(compose_cfg([*TINY_STYLEGAN2, "data=image_folder", f"data.root={data}", *overrides], out))


def test_both_lazy_terms_run_in_their_own_steps_and_resume_bit_identically(tmp_path, image_dir):
    """R1 and the path length every 2nd update, each in an optimizer step of its own (Lightning
    counts them), style mixing on; killed after iteration 2 and resumed, the weights, the
    optimizers and the path length's running mean equal the uninterrupted run's."""
    args = [*LAZY, "callbacks.checkpoint.every_n_iterations=2"]
    result = train_sg2(args, tmp_path / "full", image_dir)
    m = result["metrics"]
    assert {"train/r1", "train/pl_penalty", "train/pl_mean"} <= set(m) and all(v == v for v in m.values())
    full = load(tmp_path / "full" / "checkpoints" / "last.ckpt")
    # 5 iterations: 5 D + 5 G updates, R1 on D updates 0, 2, 4 and the path length on G's 0, 2, 4
    assert full["global_step"] == 10 + 3 + 3
    assert full["ganlab"]["techniques"]["loss"]["pl_mean"] > 0
    snapshot = tmp_path / "full" / "checkpoints" / "it0000002.ckpt"
    train_sg2([*args, f"ckpt_path={snapshot}"], tmp_path / "resumed", image_dir)
    resumed = load(tmp_path / "resumed" / "checkpoints" / "last.ckpt")
    for k, v in full["state_dict"].items():
        assert torch.equal(v, resumed["state_dict"][k]), k
    assert full["ganlab"]["techniques"]["loss"] == resumed["ganlab"]["techniques"]["loss"]
    for a, b in zip(full["optimizer_states"], resumed["optimizer_states"]):
        assert a["param_groups"][0]["lr"] == b["param_groups"][0]["lr"] == pytest.approx(2e-4 * 2 / 3)


@needs_oracle
def test_fine_tuning_starts_from_the_official_pickle_and_resumes(tmp_path, ten_classes):
    """model.init: the run's networks are the pickle's architecture (its stored arguments in the
    run's configuration) with its G, D and G_ema weights; the run trains, and resumes like any."""
    from ganlab.models.stylegan2 import load_network_pkl
    from ganlab.train import build, build_data, run_config

    overrides = [*LAZY, "data.conditional=true", f"model.init={PKL}", "model.n_fixed=10"]
    cfg = compose_cfg(
        [*TINY_STYLEGAN2, "data=image_folder", f"data.root={ten_classes}", *overrides], tmp_path
    )
    run = run_config(cfg, build_data(cfg))
    official = load_network_pkl(PKL)
    assert run.model.nz == 64 and run.model.generator.synthesis_kwargs.channel_base == 2048
    _, model, _ = build(run, datamodule=build_data(run))
    for name, net in (("G", model.G), ("D", model.D), ("G_ema", model.G_ema)):
        for k, v in official[name].state_dict().items():
            assert torch.equal(net.state_dict()[k], v), (name, k)
    train_sg2([*overrides, "callbacks.checkpoint.every_n_iterations=2"], tmp_path / "run", ten_classes)
    ck = load(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert ck["ganlab"]["config"]["model"]["generator"]["w_dim"] == 64
    resumed = train_sg2([*overrides, f"ckpt_path={tmp_path / 'run' / 'checkpoints' / 'it0000002.ckpt'}"],
                        tmp_path / "resumed", ten_classes)  # fmt: skip
    assert resumed["iterations"] == 5 and resumed["ckpt_path"].endswith("it0000002.ckpt")  # one epoch: 40 / 8
    bad = compose_cfg(
        [*TINY_STYLEGAN2, "data=image_folder", f"data.root={ten_classes}", f"model.init={PKL}"], tmp_path
    )
    with pytest.raises(Exception, match=r"10 classes.*data.conditional=true"):
        run_config(bad, build_data(bad))


def tool(module: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


@needs_oracle
def test_generate_from_the_official_pickle_with_truncation_class_and_mixing(tmp_path):
    """seeds, truncation (psi toward w_avg), class and noise const as the official signature
    computes them; mix=2x3 takes mix_styles from the columns' seeds."""
    from ganlab.checkpoint.generator import load_generator

    r = tool("ganlab.generate", [f"ckpt={PKL}", "seeds=0-3", "truncation=0.7", "class=3", "out=s"], tmp_path)
    assert r.returncode == 0, r.stderr
    png = Image.open(tmp_path / "s" / "seed0002.png")
    assert png.text["ganlab.truncation_psi"] == "0.7" and png.text["ganlab.noise_mode"] == "const"
    assert png.text["ganlab.class"] == "3" and png.text["ganlab.seed"] == "2"
    gen = load_generator(PKL)
    z = gen.sample_z(1, generator=torch.Generator().manual_seed(2))
    c = torch.nn.functional.one_hot(torch.tensor([3]), 10).float()
    with torch.no_grad():
        img = gen.G(z, c, truncation_psi=0.7, noise_mode="const")
    expected = ((img[0].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
    assert np.abs(np.asarray(png).astype(int) - expected.astype(int)).max() <= 1
    r = tool("ganlab.generate", [f"ckpt={PKL}", "mix=2x3", "mix_styles=0-3", "class=1", "out=m"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "m").iterdir())[:2] == [
        "seed0000-seed0002.png",
        "seed0000-seed0003.png",
    ]
    assert len(list((tmp_path / "m").iterdir())) == 6 and (tmp_path / "m.mixing.png").is_file()
    with Image.open(tmp_path / "m.mixing.png") as grid:
        assert grid.size[0] > 4 * 32 and grid.size[1] > 3 * 32  # 4 x 3 tiles with their padding


@needs_oracle
def test_evaluate_an_official_pickle_against_a_folder(tmp_path, ten_classes):
    args = [f"ckpt={PKL}", "n=20", "feature=tiny", "kid_subset_size=10", f"cache_dir={tmp_path / 'c'}",
            "intra_class=false", "inception_score=false", "out=e.json"]  # fmt: skip
    r = tool("ganlab.evaluate", args, tmp_path)
    assert r.returncode == 1 and "real=DIR" in r.stderr
    r = tool("ganlab.evaluate", [*args, f"real={ten_classes}", "truncation=0.5"], tmp_path)
    assert r.returncode == 0, r.stderr
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["fid"] > 0 and result["truncation_psi"] == 0.5 and result["noise_mode"] == "random"


class Boom:
    def __reduce__(self):
        return (__import__("os").system, ("touch pwned",))


def test_a_pickle_that_runs_code_is_refused_in_one_line(tmp_path):
    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump({"G": Boom(), "D": None, "G_ema": None}, f)
    r = tool("ganlab.generate", ["ckpt=evil.pkl", "n=4", "out=s"], tmp_path)
    assert r.returncode == 1 and not (tmp_path / "pwned").exists()
    (line,) = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert line.startswith("ganlab: ckpt=evil.pkl:") and "system" in line
