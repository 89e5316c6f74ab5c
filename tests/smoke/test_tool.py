"""ganlab as a tool: the installed wheel and its console scripts, fast start, learning-rate
schedules, TensorBoard, and the run report."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganlab.report import main as report_main
from ganlab.training.optim import GANOptimizers
from ganlab.utils.errors import UsageError
from tests.conftest import ROOT, TINY, fit

CLI_MODULES = ["ganlab.train", "ganlab.evaluate", "ganlab.generate", "ganlab.report"]


# -- fast start -----------------------------------------------------------------------------------
def test_command_modules_import_without_torch_or_lightning():
    """--help and tab completion only compose configs: the command modules leave torch and
    Lightning (5-8 s of imports) to the functions that train, evaluate and generate."""
    code = (
        f"import sys, {', '.join(CLI_MODULES)}; "
        "print(sorted(m for m in ('torch', 'lightning', 'torchvision') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


# -- learning-rate schedules -------------------------------------------------------------------------
def test_schedule_factors():
    opt = GANOptimizers.adam(lr=1e-3, schedule_g="linear", schedule_d="constant", decay_start=0.5)
    assert [opt.factor("g", p) for p in (0.0, 0.5, 0.75, 1.0)] == [1.0, 1.0, 0.5, 0.0]
    assert [opt.factor("d", p) for p in (0.0, 0.75, 1.0)] == [1.0, 1.0, 1.0]
    with pytest.raises(UsageError, match="optimizer.schedule_g must be one of"):
        GANOptimizers.adam(schedule_g="cosine")
    with pytest.raises(
        UsageError, match=r"D's learning rate must be a positive number, got -1 \(optimizer.d.lr\)"
    ):
        GANOptimizers(GANOptimizers.adam().factories["g"], functools.partial(torch.optim.Adam, lr=-1))


def test_linear_schedule_decays_to_zero_over_the_run(tmp_path, image_dir):
    """4 iterations (train.max_iterations): lr at iteration i is base * (1 - i/4), logged as
    train/lr_g; D keeps its constant rate; the checkpoint holds what the last step used."""
    fit(["optimizer.schedule_g=linear", "train.max_iterations=4", "optimizer.d.lr=1e-4"], tmp_path, image_dir)
    ck = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    lr_g, lr_d = (s["param_groups"][0]["lr"] for s in ck["optimizer_states"])
    assert lr_g == pytest.approx(2e-4 * (1 - 3 / 4)) and lr_d == 1e-4
    import csv

    rows = list(csv.DictReader(open(tmp_path / "csv" / "metrics.csv")))
    logged = [float(r["train/lr_g"]) for r in rows if r.get("train/lr_g")]
    assert logged == pytest.approx([2e-4 * (1 - i / 4) for i in range(4)])


def test_linear_schedule_needs_a_run_length(tmp_path, image_dir):
    with pytest.raises(UsageError, match="set train.max_kimg, train.max_iterations or trainer.max_epochs"):
        fit(["optimizer.schedule_d=linear", "trainer.max_epochs=-1"], tmp_path, image_dir)


# -- loggers ------------------------------------------------------------------------------------------
def test_tensorboard_logger_gets_scalars_and_sample_grids(tmp_path, image_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    fit(["logger=[csv,tensorboard]"], tmp_path, image_dir)
    assert (tmp_path / "csv" / "metrics.csv").is_file()  # both loggers of the list
    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0}).Reload()
    tags = events.Tags()
    assert {"train/loss_d", "train/loss_g", "train/d_acc"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("train/loss_d")] == [
        1,
        2,
        3,
        4,
        5,
    ]  # every iteration (log every 1)
    assert "samples/fixed_noise" in tags["images"]


# -- run report ---------------------------------------------------------------------------------------
def png_spread(path: Path) -> float:
    """Standard deviation of the pixel values: ~0 for a blank image."""
    return float(np.asarray(Image.open(path).convert("L"), dtype=np.float32).std())


def test_run_report_at_the_end_of_a_run_and_on_demand(tmp_path, image_dir):
    base = [o for o in TINY if not o.startswith("callbacks.report")]
    evaluation = ["callbacks.evaluation.feature=tiny", "callbacks.evaluation.every_n_iterations=2",
                  "callbacks.evaluation.n=16", "callbacks.evaluation.kid_subset_size=8",
                  f"callbacks.evaluation.cache_dir={tmp_path / 'cache'}"]  # fmt: skip
    fit([*evaluation, "callbacks.report.columns=4"], tmp_path / "run", image_dir, base=base)
    report = tmp_path / "run" / "report"
    names = {"losses.png", "d_outputs.png", "d_accuracy.png", "metrics.png", "timeline.png"}
    assert {p.name for p in report.glob("*.png")} == names
    for name in names:
        assert png_spread(report / name) > 5, name  # curves and images drawn, not blank
    # timeline: the snapshots it2, it4 and the epoch end it5, one row each, 4 latents per row
    snaps = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("it*.ckpt"))
    assert snaps == ["it0000002.ckpt", "it0000004.ckpt", "it0000005.ckpt"]
    w, h = Image.open(report / "timeline.png").size
    assert h / w > 0.6  # three rows of four latents (with one row it would be about 0.34)

    out = tmp_path / "again"
    assert report_main([str(tmp_path / "run"), "--out", str(out), "--columns", "2"]) == 0
    assert {p.name for p in out.glob("*.png")} == names
    assert report_main([str(tmp_path / "missing")]) == 1


# -- the installed wheel --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel built from a copy of the source tree, installed (not editable) into a fresh
    venv whose dependencies come from this environment through a .pth path entry. The
    repository's own editable install is not on that venv's path: ``ganlab`` is the wheel's."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()  # fmt: skip
    for f in files:
        if (ROOT / f).is_file() and not f.startswith(("data/", "experiments/", "tests/")):
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, src / f)
    dist = tmp / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(dist)], check=True, capture_output=True)  # fmt: skip
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    code = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = subprocess.run(
        [venv / "bin" / "python", "-c", code], capture_output=True, text=True, check=True
    )
    purelib = purelib.stdout.strip()
    Path(purelib, "deps_from_test_env.pth").write_text(sysconfig.get_path("purelib") + "\n")
    wheel = next(dist.glob("ganlab-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--no-deps", str(wheel)], check=True, capture_output=True)  # fmt: skip
    return venv


def run_script(venv: Path, name: str, args: list[str], cwd: Path, **env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    environ.update(PATH=f"{venv / 'bin'}:{environ['PATH']}", WANDB_MODE="offline", **env)
    return subprocess.run([str(venv / "bin" / name), *args], cwd=cwd, capture_output=True, text=True,
                          env=environ, timeout=300)  # fmt: skip


def test_wheel_installs_console_scripts_that_train_from_an_empty_folder(installed, tmp_path, image_dir):
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    where = run_script(installed, "python", ["-c", "import ganlab; print(ganlab.__file__)"], empty)
    assert str(installed) in where.stdout, where.stdout + where.stderr  # the wheel, not the source tree
    for name in ("train", "evaluate", "generate", "bench", "report", "fetch"):
        r = run_script(installed, f"ganlab-{name}", ["--help"], empty)
        first = r.stdout.splitlines()[0] if r.stdout else ""
        assert r.returncode == 0 and f"ganlab-{name}" in first, (name, r.stdout[:300], r.stderr[-2000:])

    # your own config group entries from your own folder, beside the shipped ones
    own = empty / "my_conf" / "loss"
    own.mkdir(parents=True)
    (own / "my_lsgan.yaml").write_text("_target_: ganlab.losses.lsgan.LSGANLoss\n")
    r = run_script(installed, "ganlab-train", ["--config-dir", "my_conf", *TINY, "loss=my_lsgan",
                   "data=image_folder", f"data.root={image_dir}", "hydra.run.dir=run"], empty)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    ck = torch.load(empty / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ck["ganlab"]["config"]["loss"]["_target_"] == "ganlab.losses.lsgan.LSGANLoss"
    assert ck["ganlab"]["counters"]["iterations"] == 5

    r = run_script(
        installed, "ganlab-generate", ["ckpt=run/checkpoints/last.ckpt", "n=4", "out=samples"], empty
    )
    assert r.returncode == 0 and len(list((empty / "samples").glob("0*.png"))) == 4, r.stderr[-2000:]
    # generate's folder, evaluated as it is (feature=auto: offline, the shipped InceptionV3 of fid-helper)
    r = run_script(installed, "ganlab-evaluate", [f"real={image_dir}", "fake=samples", "n=4", "n_real=8",
                   "batch_size=4", "kid_subset_size=4", f"cache_dir={empty / 'cache'}"], empty)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads((empty / "samples.eval.json").read_text())
    assert result["n_fake"] == 4 and result["feature_net"].startswith("fid_helper") and result["fid"] > 0

    # Hydra's tab completion through the console script
    r = run_script(installed, "ganlab-train", ["-sc", "query=bash"], empty, COMP_LINE="ganlab-train loss=h")
    assert r.stdout.split() == ["loss=hinge"], r.stdout + r.stderr[-1000:]
    r = run_script(installed, "ganlab-train", ["-sc", "install=bash"], empty)
    assert "complete" in r.stdout and "ganlab-train" in r.stdout
