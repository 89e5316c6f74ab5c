"""A checkpoint written by ganlab 0.1 as released (``tests/fixtures/release_0_1.ckpt``, made by
``tests/fixtures/make_release_checkpoint.py`` before the package layout moved) keeps working:
it resumes to the weights it reached then, exactly as a resume through today's own checkpoint
format does, and loads in ``ganlab-generate`` and ``ganlab-evaluate``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from tests.conftest import ROOT, fit, load

FIXTURES = ROOT / "tests" / "fixtures"
RELEASE = FIXTURES / "release_0_1.ckpt"
# As the fixture was made (make_release_checkpoint.OVERRIDES), on the conftest's image tree; its
# data.root was a temporary folder, hence allow_resume_changes (the images are the same bytes).
SAME = [
    "trainer.max_epochs=-1",
    "callbacks.checkpoint.every_n_iterations=4",
    "model.ema_half_life_kimg=0.1",
    "model.d_augment=[{_target_: ganlab.augment.ADA, target: 0.6, speed_kimg: 1}]",
    "train.allow_resume_changes=true",
]


@pytest.fixture(scope="module")
def resumed(tmp_path_factory, image_dir):
    run = tmp_path_factory.mktemp("release") / "run"
    fit([*SAME, f"ckpt_path={RELEASE}", "train.max_iterations=8"], run, image_dir)
    return load(run / "checkpoints" / "last.ckpt")


def test_a_release_checkpoint_resumes_to_the_weights_it_reached_then(resumed):
    then = torch.load(FIXTURES / "release_0_1_resumed.pt", map_location="cpu", weights_only=True)
    assert resumed["ganlab"]["counters"] == then["counters"]
    assert resumed["state_dict"].keys() == then["state_dict"].keys()
    # D's BatchNorm statistics aside: 0.1's doctor moved them when it scored D on its probe slices
    # (D in training mode); since, the probe puts D's buffers back. They never enter training (D
    # trains in training mode), only eval-mode uses of D (ganlab-generate select=top_d).
    probed = ("running_mean", "running_var", "num_batches_tracked")
    for k, v in then["state_dict"].items():  # the same arithmetic; another CPU's kernels may round apart
        if not (k.startswith("D.") and k.endswith(probed)):
            assert torch.allclose(resumed["state_dict"][k], v, rtol=1e-4, atol=1e-6), k


def test_a_release_checkpoint_resumes_as_exactly_as_todays_format(resumed, tmp_path, image_dir):
    """Resumed straight to 8, or to 6, saved in today's format and resumed to 8: the same bits."""
    six = ["train.max_iterations=6", "callbacks.checkpoint.every_n_iterations=6"]
    fit([*SAME, f"ckpt_path={RELEASE}", *six], tmp_path / "a", image_dir)
    fit([*SAME, f"ckpt_path={tmp_path / 'a' / 'checkpoints' / 'last.ckpt'}", "train.max_iterations=8"],
        tmp_path / "b", image_dir)  # fmt: skip
    twice = load(tmp_path / "b" / "checkpoints" / "last.ckpt")
    assert twice["ganlab"]["counters"] == resumed["ganlab"]["counters"]
    for k, v in resumed["state_dict"].items():
        assert torch.equal(twice["state_dict"][k], v), k


def tool(module: str, args: list[str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def test_a_release_checkpoint_loads_in_generate_and_evaluate(tmp_path, image_dir):
    r = tool("ganlab.generate", [f"ckpt={RELEASE}", "n=6", f"out={tmp_path / 'png'}", "device=cpu"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert len(list((tmp_path / "png").glob("*.png"))) == 6
    out = tmp_path / "eval.json"
    args = [f"ckpt={RELEASE}", "n=16", "feature=tiny_nologits", "kid_subset_size=8", f"data_root={image_dir}",
            f"cache_dir={tmp_path}", f"out={out}", "device=cpu"]  # fmt: skip
    r = tool("ganlab.evaluate", args, tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(out.read_text())["fid"] > 0
