"""The run's history (``ganlab.training.history``): what the callbacks share, kept across a resume,
and a ganlab 0.2 checkpoint's callback states upgraded into it."""

from __future__ import annotations

import math

from ganlab.checkpoint.format import GanlabState
from ganlab.training.history import WINDOW, History


def test_signals_keep_their_first_and_last_windows_and_the_latest_value():
    h = History()
    for it in range(1, 101):
        h.put({"train/loss_d": float(it)}, it * 10)
    h.put({"doctor/r_v": float("nan")}, 1010)  # measured as NaN: the latest, not a reference
    assert h.latest["train/loss_d"] == 100.0 and math.isnan(h.latest["doctor/r_v"])
    assert h.fresh == {"doctor/r_v"} and "doctor/r_v" not in h.last
    assert h.recent("train/loss_d", 3) == [98.0, 99.0, 100.0]
    assert h.recent("train/loss_d", 2, before=1000) == [98.0, 99.0]  # ticks before iteration 1000
    assert len(h.last["train/loss_d"]) == WINDOW and h.early("train/loss_d", 30) == [1.0, 2.0, 3.0]
    h.put({"train/loss_g": 1.0}, 1010)  # the same tick: both are fresh
    assert h.fresh == {"doctor/r_v", "train/loss_g"}


def test_evaluations_checkpoints_and_a_round_trip():
    h = History()
    assert h.record_evaluation({"iteration": 100, "fid": 50.0, "kid_mean": 0.1})
    assert not h.record_evaluation({"iteration": 200, "fid": 60.0})
    assert not h.record_evaluation({"iteration": 300, "fid": 50.0})  # equal is not better
    assert h.best_evaluation() == {"iteration": 100, "fid": 50.0, "kid_mean": 0.1}
    h.record_checkpoint("a.ckpt", 100)
    h.conditions = ["mode_collapse"]
    h.record_checkpoint("b.ckpt", 200)
    assert h.snapshots() == ["b.ckpt", "a.ckpt"] and h.snapshots(healthy=True) == ["a.ckpt"]
    h.record_rollback({"iteration": 250})
    h.put({"train/loss_d": 1.0}, 250)
    again = History()
    again.load_state_dict(h.state_dict())
    assert again.state_dict() == h.state_dict()


def test_a_version_2_checkpoint_gets_its_history_from_its_callbacks():
    """ganlab 0.2 kept the rollbacks, the best FID and the doctor's windows in the callbacks'
    states: the upgrade puts them in the history, and fills in what older runs implied."""
    saver = {"dirpath": "run/ckpt", "filename": "it{iteration:07d}"}
    config = {
        "data": {"root": "x"},
        "callbacks": {"checkpoint": saver, "evaluation": {"best_dirpath": "run/ckpt"}},
    }
    checkpoint = {
        "ganlab": {"version": 2, "config": config, "counters": {"iterations": 500}},
        "callbacks": {
            "DivergenceGuard": {"rollbacks": 2},
            "FIDEvaluation": {"best_fid": 31.5},
            "Doctor": {"best": [31.5, 400], "good_iteration": 300,
                       "refs": {"loss": [1.0, 2.0], "diversity": [0.7, 0.8], "warm_g_grad_norm": [5.0]}},
        },
    }  # fmt: skip
    state = GanlabState.of(checkpoint)
    h = History()
    h.load_state_dict(state.history)
    assert len(h.rollbacks) == 2 and h.best_evaluation() == {"iteration": 400, "fid": 31.5}
    assert h.best_checkpoint == "run/ckpt/best.ckpt" and h.snapshots(healthy=True) == [
        "run/ckpt/it0000300.ckpt"
    ]
    assert h.recent("doctor/diversity", 5) == [0.7, 0.8] and h.early("doctor/g_grad_norm", 300) == [5.0]
    assert h.recent("doctor/loss_peak", 5) == [1.0, 2.0]
    assert state.implied == {"data.holdout": 0} and state.config["data"]["holdout"] == 0
    written: dict = {}
    state.write(written)
    assert written["ganlab"]["version"] == 3 and "implied" not in written["ganlab"]
