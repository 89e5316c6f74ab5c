"""Evaluation and generation as users run them: training-time FID, ganlab-evaluate and ganlab-generate."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from ganlab.utils.hashing import file_digest
from tests.conftest import ROOT, TINY, compose_cfg, rng_images

# --- end to end ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_ckpt(tmp_path_factory, image_dir):
    """A tiny run with evaluation every 2 iterations and at the end (tiny extractor)."""
    from ganlab.train import train

    out = tmp_path_factory.mktemp("run")
    cfg = compose_cfg(
        [
            *TINY,
            "data=image_folder",
            f"data.root={image_dir}",
            "callbacks.evaluation.feature=tiny",
            "callbacks.evaluation.every_n_iterations=2",
            "callbacks.evaluation.n=24",
            "callbacks.evaluation.kid_subset_size=10",
            f"callbacks.evaluation.cache_dir={out / 'cache'}",
            "callbacks.evaluation.at_end=true",
        ],
        out,
    )
    train(cfg)
    return out


def run_tool(module, args, cwd):
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_evaluation_during_training(trained_ckpt):
    results = sorted((trained_ckpt / "eval").glob("it*.json"))
    assert [p.name for p in results] == ["it0000002.json", "it0000004.json", "it0000005.json"]
    r = json.loads(results[0].read_text())
    assert r["n_fake"] == 24 and r["n_real"] == 40 and r["fid"] > 0 and "is_mean" in r
    best = torch.load(trained_ckpt / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    fids = {json.loads(p.read_text())["iteration"]: json.loads(p.read_text())["fid"] for p in results}
    assert best["ganlab"]["counters"]["iterations"] == min(fids, key=fids.get)
    with open(trained_ckpt / "csv" / "metrics.csv") as f:
        header = f.readline()
    assert "val/fid_24" in header and "val/kid_24" in header and "val/is_24" in header
    assert len(list((trained_ckpt / "cache").glob("real_32px_*.pt"))) == 1


def test_evaluate_cli(trained_ckpt, tmp_path):
    ckpt = trained_ckpt / "checkpoints" / "last.ckpt"
    out = tmp_path / "eval.json"
    args = [
        f"ckpt={ckpt}",
        "n=32",
        "feature=tiny_nologits",
        "kid_subset_size=16",
        f"cache_dir={tmp_path}",
        f"out={out}",
        "device=cpu",
    ]
    r = run_tool("ganlab.evaluate", args, tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(out.read_text())
    assert json.JSONDecoder().raw_decode(r.stdout[r.stdout.index("{") :])[0] == result  # printed too
    assert result["n_fake"] == 32 and result["fid"] > 0 and result["kid_std"] >= 0
    assert "no classifier head" in result["is_skipped"]
    assert result["images_per_s"] > 0 and result["seconds"] > 0 and len(result["ckpt_sha256"]) == 64
    assert not (tmp_path / "outputs").exists()  # tools write only where asked


def test_generate_cli(trained_ckpt, tmp_path):

    ckpt = trained_ckpt / "checkpoints" / "last.ckpt"
    r = run_tool(
        "ganlab.generate",
        [
            f"ckpt={ckpt}",
            "n=6",
            f"out={tmp_path / 's'}",
            "seed=3",
            "interpolate=5",
            "interpolate_rows=2",
            "device=cpu",
        ],
        tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    files = sorted(p.name for p in (tmp_path / "s").iterdir())
    assert files == [f"{i:06d}.png" for i in range(6)]  # the samples only: the folder evaluates as it is
    assert (tmp_path / "s.grid.png").is_file() and (tmp_path / "s.interpolation.png").is_file()
    img = Image.open(tmp_path / "s" / "000004.png")
    assert img.size == (32, 32)
    assert img.text["ganlab.ckpt_sha256"] == file_digest(ckpt)
    assert img.text["ganlab.latent_index"] == "4" and img.text["ganlab.seed"] == "3"
    assert len(img.text["ganlab.config_sha256"]) == 64 and img.text["ganlab.iteration"] == "5"
    assert Image.open(tmp_path / "s.interpolation.png").size[0] > 5 * 32  # 5 frames per row
    # Same seed and index -> same image: the provenance is enough to regenerate it.
    r2 = run_tool(
        "ganlab.generate", [f"ckpt={ckpt}", "n=6", f"out={tmp_path / 't'}", "seed=3", "device=cpu"], tmp_path
    )
    assert r2.returncode == 0
    a = np.asarray(Image.open(tmp_path / "s" / "000004.png"))
    assert np.array_equal(a, np.asarray(Image.open(tmp_path / "t" / "000004.png")))
    # seeds= (stylegan2-ada's convention): one image per seed, the same whatever else is generated
    for out, seeds in (("u", "2-4"), ("v", "[4]")):
        args = [f"ckpt={ckpt}", f"seeds={seeds}", f"out={tmp_path / out}", "device=cpu"]
        r3 = run_tool("ganlab.generate", args, tmp_path)
        assert r3.returncode == 0, r3.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "u").iterdir()) == [f"seed000{i}.png" for i in (2, 3, 4)]
    four = Image.open(tmp_path / "u" / "seed0004.png")
    assert four.text["ganlab.seed"] == "4"
    assert np.array_equal(np.asarray(four), np.asarray(Image.open(tmp_path / "v" / "seed0004.png")))


def test_evaluate_cli_bad_checkpoint(tmp_path):
    r = run_tool("ganlab.evaluate", [f"ckpt={tmp_path / 'missing.ckpt'}"], tmp_path)
    assert r.returncode == 1 and "ckpt=" in r.stderr and "missing.ckpt: no such file" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1  # one short message


def test_fid_agreement_script_reads_the_png_files_itself(tmp_path, image_dir):
    """experiments/fid_agreement.py writes both sets as PNGs and computes ganlab's FID from the
    files; torch-fidelity's side runs from the same files (offline it reports why it could not)."""
    run = tmp_path / "run"
    cfg = compose_cfg([*TINY, "data=image_folder", f"data.root={image_dir}"], run)
    from ganlab.train import train

    train(cfg)
    script, ckpt = ROOT / "experiments" / "fid_agreement.py", run / "checkpoints" / "last.ckpt"
    args = [
        "--n",
        "20",
        "--batch-size",
        "10",
        "--out",
        str(tmp_path / "sets"),
        "--feature",
        "tiny",
        "--device",
        "cpu",
    ]
    r = subprocess.run(
        [sys.executable, str(script), "--ckpt", str(ckpt), *args],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(list((tmp_path / "sets" / "real").glob("*.png"))) == 20
    assert len(list((tmp_path / "sets" / "fake").glob("*.png"))) == 20
    assert result["fid_ganlab"] > 0 and result["n"] == 20
    assert "fid_torch_fidelity" in result or "torch_fidelity_error" in result


def test_evaluate_two_folders_like_pytorch_fid(tmp_path):
    """`ganlab.evaluate real=DIR fake=DIR`: FID between image folders, real statistics cached."""
    for name, seed in (("real", 1), ("fake", 2)):
        (tmp_path / name).mkdir()
        for i, a in enumerate(rng_images(30, 32, seed=seed)):
            Image.fromarray(a).save(tmp_path / name / f"{i:03d}.png")
    common = ["feature=tiny", "kid_subset_size=10", f"cache_dir={tmp_path / 'cache'}", "batch_size=8"]
    r = run_tool(
        "ganlab.evaluate", [f"real={tmp_path / 'real'}", f"fake={tmp_path / 'fake'}", *common], tmp_path
    )
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads((tmp_path / "fake.eval.json").read_text())
    assert result["n_fake"] == 30 and result["n_real"] == 30 and result["fid"] > 0
    assert len(list((tmp_path / "cache").glob("real_*.pt"))) == 1
    same = tmp_path / "same.json"
    real = f"real={tmp_path / 'real'}"
    r = run_tool("ganlab.evaluate", [real, f"fake={tmp_path / 'real'}", f"out={same}", *common], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(same.read_text())["fid"] < result["fid"] / 10  # a set against itself: about 0
    assert "real statistics from cache" in r.stdout + r.stderr
    # a folder with fewer images than n= is evaluated on what it holds, and says so
    r = run_tool(
        "ganlab.evaluate", [real, f"fake={tmp_path / 'fake'}", "n=50", f"out={same}", *common], tmp_path
    )
    assert r.returncode == 0 and "holds 30 images, fewer than n=50" in r.stdout + r.stderr
    assert json.loads(same.read_text())["n_fake"] == 30


def test_evaluate_needs_something_to_evaluate(tmp_path):
    r = run_tool("ganlab.evaluate", [], tmp_path)
    assert r.returncode == 1 and "pass ckpt=path/last.ckpt, or real=DIR fake=DIR" in r.stderr
