"""The CUDA-graph path (`model.cuda_graph=true`). Capture needs a GPU; on CPU these tests check
its refusals and run the graph path minus the capture (raw optimizers, Tensor.backward, the EMA
weight as a device scalar, one plan per phase pattern) against the eager step."""

import pytest
import torch

import ganlab.speed.cuda_graph
from tests.conftest import fit, load

TECHNIQUES = [
    "model.ema_half_life_kimg=0.05",
    "model.d_augment=[{_target_: ganlab.augment.DiffAugment}]",
    "loss.flip_prob=0.1",
    "loss.r1_gamma=1",
    "loss.r1_every=3",
    "model.g_every=2",
    "model.d_steps_per_g=2",
    "data.batch_size=4",
    "callbacks.checkpoint.every_n_iterations=0",
]


def test_graph_path_without_capture_matches_eager(tmp_path, image_dir, monkeypatch):
    fit(TECHNIQUES, tmp_path / "eager", image_dir)
    monkeypatch.setattr(ganlab.speed.cuda_graph, "check_capturable", lambda module, trainer: None)
    seen_plans = []
    original = ganlab.speed.cuda_graph.CUDAGraphIteration.__call__

    def recording(self, real, plan, labels=None):
        seen_plans.append(plan)
        return original(self, real, plan, labels)

    monkeypatch.setattr(ganlab.speed.cuda_graph.CUDAGraphIteration, "__call__", recording)
    fit([*TECHNIQUES, "model.cuda_graph=true"], tmp_path / "graph", image_dir)
    a = load(tmp_path / "eager" / "checkpoints" / "last.ckpt")
    b = load(tmp_path / "graph" / "checkpoints" / "last.ckpt")
    assert a["ganlab"]["counters"] == b["ganlab"]["counters"]
    assert b["ganlab"]["counters"]["d_updates"] == 10 and b["ganlab"]["counters"]["g_updates"] == 2
    for k, v in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][k], v, rtol=1e-6, atol=1e-7, msg=k)
    # Iterations 0..4: D every iteration (2 updates, R1 on updates 0, 3, 6, 9), G on odd ones.
    assert len(seen_plans) == 5 and [p.g for p in seen_plans] == [False, True, False, True, False]
    assert [tuple(bool(t) for t in p.d) for p in seen_plans] == [
        (True, False),
        (False, True),
        (False, False),
        (True, False),
        (False, True),
    ]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ([], "needs a CUDA device"),
        (["model.d_skip_accuracy=0.8"], "d_skip_accuracy decides on the host"),
    ],
)
def test_refusals_name_the_setting(override, message, tmp_path, image_dir):
    """Every problem is named in one message (here the CPU one comes with each)."""
    with pytest.raises(ValueError, match=rf"model.cuda_graph=true cannot be used here: .*{message}"):
        fit(["model.cuda_graph=true", *override], tmp_path, image_dir)
