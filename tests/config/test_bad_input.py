"""Bad input, one line: every setting or argument a user can get wrong ends in
``ganlab: <what> (<the key>): <the fix>``, exit status 1, no traceback, before anything is built.
The commands run in this process (Hydra's main, as the console scripts run it) to stay fast."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch


def run_main(tool: str, args: list[str], cwd: Path, capsys) -> tuple[int, str]:
    """``ganlab-<tool> args`` in this process (Hydra's main, as the console script runs it, without
    a new interpreter per case): (exit status, stderr)."""
    import importlib

    main = importlib.import_module(f"ganlab.{tool}").main
    old_argv, old_cwd = sys.argv, os.getcwd()
    sys.argv, code = [f"ganlab-{tool}", *args], 0
    os.chdir(cwd)
    capsys.readouterr()
    try:
        main()
    except SystemExit as e:
        code = e.code
    finally:
        sys.argv = old_argv
        os.chdir(old_cwd)
    return code, capsys.readouterr().err


BAD_TRAIN = {  # override -> the setting the one-line message must name
    "model.nz=0": "model.nz",
    "model.generator.ngf=0": "model.generator.ngf",
    "optimizer.g.betas=[0.5]": "optimizer.g.betas",
    "model.n_fixed=0": "model.n_fixed",
    "callbacks.evaluation.n=0": "callbacks.evaluation.n",
    "trainer.max_steps=abc": "trainer.max_steps",
    "model.d_steps_per_g=0": "model.d_steps_per_g",
    "data.num_workers=-1": "data.num_workers",
    "trainer.devices=0": "trainer.devices",
    "train.on_divergence=explode": "train.on_divergence",
    "trainer.strategy=fsdp": "trainer.strategy",
    "train.max_kimg=-1": "train.max_kimg",
    "train.max_iterations=0": "train.max_iterations",
    "train.rollback_lr_factor=0": "train.rollback_lr_factor",
    "callbacks.checkpoint.every_n_iterations=-5": "callbacks.checkpoint.every_n_iterations",
    "model.ema_half_life_kimg=-1": "model.ema_half_life_kimg",
    "data=image_folder": "data.root",
    "hydra.run.dir=/proc/ganlab/run": "hydra.run.dir",
    "data.batch_size=0": "data.batch_size",
    "optimizer.g.lr=abc": "optimizer.g.lr",
    "loss.r1_gamma=-1": "in loss",  # a constructor's own check, unwrapped from Hydra's three lines
    "seed=abc": "seed",
    "data.holdout=-3": "data.holdout",
    "callbacks.doctor.disable=[mode_colapse]": "in callbacks.doctor",
    # a configuration of your own written for ganlab 0.1's module paths: the new path, named
    "model._target_=ganlab.assembly.gan_module": "model._target_",
    "callbacks.progress._target_=ganlab.progress.GANProgressBar": "callbacks.progress._target_",
    # ... and for 0.2's place of the DDP strategy
    "+trainer.strategy._target_=ganlab.speed.ddp.GANDDPStrategy": "trainer.strategy._target_",
}


@pytest.mark.parametrize("override", list(BAD_TRAIN))
def test_bad_training_settings_end_in_one_line_naming_the_key(override, tmp_path, capsys):
    """``ganlab: <what> (<the key>): <the fix>``, exit status 1, no traceback, before anything
    is built (none of these needs data: they are refused first)."""
    args = ["trainer=cpu", "logger=csv", f"hydra.run.dir={tmp_path / 'run'}", override]
    if override.startswith("hydra.run.dir"):
        args = ["trainer=cpu", "logger=csv", override]
    code, err = run_main("train", args, tmp_path, capsys)
    lines = [line for line in err.splitlines() if line.startswith("ganlab: ")]
    assert code == 1 and len(lines) == 1 and f"({BAD_TRAIN[override]}): " in lines[0], err[-2000:]
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def small_folders(tmp_path_factory) -> Path:
    from PIL import Image

    from tests.conftest import rng_images

    root = tmp_path_factory.mktemp("folders")
    for name, n in (("real", 6), ("one_real", 1), ("one_fake", 1)):
        (root / name).mkdir()
        for i, a in enumerate(rng_images(n, 32, seed=len(name))):
            Image.fromarray(a).save(root / name / f"{i}.png")
    return root


@pytest.mark.parametrize(
    ("tool", "args", "key"),
    [
        ("generate", ["ckpt=x.ckpt"], "out"),
        ("generate", ["ckpt=x.ckpt", "out=/proc/ganlab/samples"], "out"),
        ("generate", ["ckpt=x.ckpt", "out=s", "device=cuda"], "device"),
        ("generate", ["ckpt=x.ckpt", "out=s", "interpolate=-2"], "interpolate"),
        ("generate", ["ckpt=x.ckpt", "out=s", "n=0"], "n"),
        ("generate", ["ckpt=x.ckpt", "out=s", "seeds=3-x"], "seeds"),
        ("evaluate", ["real={f}/real", "fake={f}/one_fake", "feature=tiny"], "n"),
        ("evaluate", ["real={f}/one_real", "fake={f}/real", "feature=tiny"], "n_real"),
        ("evaluate", ["real={f}/real", "fake={f}/real", "feature=/nope.pt"], "feature"),
        ("evaluate", ["n=-3", "ckpt=x.ckpt"], "n"),
    ],
)
def test_bad_generate_and_evaluate_inputs_end_in_one_line(tool, args, key, small_folders, tmp_path, capsys):
    if tool == "generate" and "device=cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    args = [a.format(f=small_folders) for a in args]  # all refused before the (missing) checkpoint is read
    code, err = run_main(tool, [*args, f"cache_dir={tmp_path / 'cache'}"] if tool == "evaluate" else args,
                         tmp_path, capsys)  # fmt: skip
    lines = [line for line in err.splitlines() if line.startswith("ganlab: ")]
    assert code == 1 and len(lines) == 1 and f"({key}" in lines[0], err[-2000:]
    assert "Traceback" not in err
