"""The training doctor's parts without training: the held-out split, the probe's measures, each
condition's hysteresis, and fixes that are overrides a user can type (composed here)."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from ganlab.data.base import holdout_size, split
from ganlab.doctor.base import Tracker
from ganlab.doctor.fixes import Context, fmt
from ganlab.doctor.probe import pairwise_distance
from tests.conftest import CONF, compose_cfg

# The conditions as conf/callbacks/default.yaml ships them: their thresholds' one home.
SHIPPED = OmegaConf.to_container(OmegaConf.load(CONF / "callbacks" / "default.yaml").doctor.conditions)


def shipped(name: str, **overrides):
    """The shipped condition ``name``, with some thresholds overridden."""
    cond = instantiate({**SHIPPED[name], **overrides})
    cond.name = name
    return cond


def test_holdout_is_disjoint_fixed_and_leaves_max_images_alone():
    train, held = split(60_000, None, "auto")
    assert len(held) == 256 and len(train) == 60_000 - 256 and not set(train) & set(held)
    assert split(60_000, None, "auto") == (train, held)  # every run, rank and resume alike
    # A small-data run keeps the subset ganlab always drew (the front of the seed-0 permutation)
    # and its held-out images come from the images it leaves out.
    perm = torch.randperm(60_000, generator=torch.Generator().manual_seed(0))
    small, small_held = split(60_000, 500, "auto")
    assert small == perm[:500].sort().values.tolist() and len(small_held) == 256
    assert not set(small) & set(small_held)
    assert split(40, None, "auto") == (list(range(40)), [])  # tiny sets hold nothing back
    assert holdout_size(2000, 0) == 100 and holdout_size(159, 0) == 0 and holdout_size(128, 59_872) == 256
    assert len(split(100, None, 10)[1]) == 10 and split(100, None, 0) == (list(range(100)), [])


def test_diversity_measure_sees_identical_fakes():
    real = torch.randn(16, 3, 32, 32)
    same = real[:1].expand(16, -1, -1, -1)
    assert pairwise_distance(same).item() == pytest.approx(0.0, abs=1e-5)
    assert (pairwise_distance(real[:8]) / pairwise_distance(real[8:])).item() == pytest.approx(1.0, abs=0.15)


def test_diversity_of_a_conditional_batch_is_measured_within_each_class():
    """A conditional G that draws one image per class collapses inside every class while its batch,
    ten classes, looks as varied as the data: within the classes its fakes are alike."""
    labels = torch.arange(40) % 10
    real = torch.randn(40, 1, 32, 32)
    protos = torch.randn(10, 1, 32, 32)
    collapsed = protos[labels] + 0.01 * torch.randn(40, 1, 32, 32)
    across = pairwise_distance(collapsed) / pairwise_distance(real)
    within = pairwise_distance(collapsed, labels) / pairwise_distance(real, labels)
    assert across.item() > 0.8 and within.item() < 0.05
    varied = torch.randn(40, 1, 32, 32)
    ratio = pairwise_distance(varied, labels) / pairwise_distance(real, labels)
    assert ratio.item() == pytest.approx(1.0, abs=0.15)
    # no two images of one class (a batch no larger than the classes): all pairs, not 0/0
    one_each = pairwise_distance(real[:10], labels[:10])
    assert one_each.item() == pytest.approx(pairwise_distance(real[:10]).item())


def ticks(cond, values, key="doctor/diversity"):
    tracker, events = Tracker(), []
    for i, v in enumerate(values):
        event = tracker.step(cond, {key: v, "train/d_fake": 0.5}, (i, i / 10))
        if event:
            events.append((event, i))
    return events, tracker


def test_hysteresis_needs_patience_and_does_not_flap():
    cond = shipped("mode_collapse", diversity=0.5, clear_diversity=0.65)
    assert ticks(cond, [0.3, 0.3, 0.9, 0.3, 0.3, 0.9])[0] == []  # never 3 bad ticks in a row
    # Starts on the third bad tick, dated from the first; hovering around 0.5 does not end it.
    events, tracker = ticks(cond, [0.9, 0.3, 0.4, 0.45, 0.55, 0.48, 0.6, 0.52, 0.7, 0.7, 0.7])
    assert events == [("start", 3), ("end", 10)]
    assert tracker.active is False
    events, tracker = ticks(cond, [0.3, 0.3, 0.3, 0.2])
    assert events == [("start", 2)] and tracker.since == (0, 0.0)
    restored = Tracker()
    restored.load_state_dict(tracker.state_dict())  # checkpointed: still open after a resume
    assert restored.active and restored.since == (0, 0.0)


def test_fakes_still_spreading_out_are_not_collapsing():
    """Early in a least-squares run the fakes' spread is low but growing: not mode collapse."""
    cond = shipped("mode_collapse")
    growing = {"doctor/diversity": 0.45, "ref/diversity": 0.35, "train/d_fake": 0.5}
    flat = {**growing, "ref/diversity": 0.44}
    assert cond.bad(growing) is False and cond.bad(flat) is True
    assert cond.bad({k: v for k, v in growing.items() if k != "ref/diversity"}) is True  # no history yet


def test_patience_counts_measurements_not_repeats_of_one():
    """D's score on the probe slices is measured every 4th tick: the ticks between carry no slice
    signal, so d_memorises needs three measurements past its threshold, not one read three times."""
    from ganlab.callbacks.doctor import Doctor
    from ganlab.training.history import History

    cond = shipped("d_memorises")
    doctor, history, tracker = Doctor(conditions={"d_memorises": cond}), History(), Tracker()
    starts = []
    for it in range(25, 25 * 13, 25):
        values = {"train/loss_d": 1.0, "train/loss_g": 1.0}
        if it % 100 == 0:  # a slice measurement: D tells training images from held-out ones
            values |= {"doctor/r_train": 0.9, "doctor/r_v": 0.2}
        history.put(values, it)
        s = doctor.signals(history, it)
        assert ("doctor/gap" in s) == (it % 100 == 0)
        if tracker.step(cond, s, (it, 0.0)):
            starts.append(it)
    assert starts == [300]  # the third measurement (100, 200, 300), not the tick after the first


def test_margins_are_the_closest_approach_to_the_start_test():
    """A condition's margin at a tick is its farthest clause's slack in units of its threshold;
    the tracker keeps the smallest (a healthy run's closest approach) and it is checkpointed."""
    cond, tracker = shipped("d_overpowers"), Tracker()  # acc_fake >= 0.97 and d_fake <= 0.03
    s = {"train/d_acc_fake": 0.99, "train/d_fake": 0.06}
    margin, clauses = cond.margin(s)
    assert [c.holds for c in clauses] == [True, False] and margin == pytest.approx((0.06 - 0.03) / 0.03)
    for it, d_fake in ((100, 0.2), (200, 0.045), (300, 0.09)):
        tracker.near(cond, {**s, "train/d_fake": d_fake}, it)
    assert tracker.closest["iteration"] == 200 and tracker.closest["margin"] == pytest.approx(0.5)
    assert tracker.closest["clauses"][1] == ["train/d_fake", 0.045, "<=", 0.03]
    restored = Tracker()
    restored.load_state_dict(tracker.state_dict())
    assert restored.closest == tracker.closest
    assert cond.bad(s) is False and cond.bad({**s, "train/d_fake": 0.02}) is True
    assert cond.margin({**s, "train/d_fake": 0.02})[0] <= 0  # named: at or past every threshold
    assert cond.margin({"train/d_fake": 0.02}) is None  # a signal missing: no margin


def test_a_run_resumed_into_a_new_directory_does_not_point_at_the_old_best_ckpt(tmp_path):
    """The old directory's best.ckpt may since hold later weights than this run's history saw: the
    fix points at the checkpoint the resume started from, which holds the best evaluation."""
    from types import SimpleNamespace

    from ganlab.callbacks.doctor import Doctor
    from ganlab.training.history import History

    old, new = tmp_path / "old", tmp_path / "new"
    (old / "checkpoints").mkdir(parents=True)
    (old / "checkpoints" / "best.ckpt").write_bytes(b"")
    history = History()
    history.record_evaluation({"iteration": 1000, "fid": 20.0})
    history.best_checkpoint = str(old / "checkpoints" / "best.ckpt")
    module = SimpleNamespace(history=history, run_config={})
    doctor = Doctor(run_dir=str(new))
    doctor.resumes = [{"iteration": 1000, "ckpt_path": str(old / "checkpoints" / "it0001000.ckpt")}]
    assert doctor.context(module).best_ckpt == str(old / "checkpoints" / "it0001000.ckpt")
    assert Doctor(run_dir=str(old)).context(module).best_ckpt == history.best_checkpoint  # its own


def test_missing_signal_decides_nothing():
    cond = shipped("mode_collapse")
    assert ticks(cond, [float("nan")] * 5)[0] == []
    assert Tracker().step(cond, {}, (1, 0.1)) is None


def test_alike_fakes_that_d_rejects_are_not_called_mode_collapse():
    """A G that D overpowers never spreads out either: with D(G(z)) near 0 that is d_overpowers."""
    cond, tracker = shipped("mode_collapse"), Tracker()
    for i in range(5):
        assert tracker.step(cond, {"doctor/diversity": 0.1, "train/d_fake": 0.01}, (i, 0.0)) is None


@pytest.mark.parametrize("name", list(SHIPPED))
def test_every_fix_is_an_override_that_composes_and_takes_effect(name, tmp_path):
    """Fixes are chosen from this run's config, compose as typed, and change what they name."""
    base = ["experiment=limited_data_ada", "model.d_every=2", "optimizer.g.lr=1e-5"]
    cfg = compose_cfg(base, tmp_path)
    from omegaconf import OmegaConf

    config = OmegaConf.to_container(cfg, resolve=True)
    ctx = Context(config, best_ckpt=str(tmp_path / "best.ckpt"), good_ckpt=str(tmp_path / "it0000500.ckpt"))
    fix = shipped(name).fix(ctx)
    assert fix, f"{name} suggests nothing for this run"
    fixed = compose_cfg([*base, *fix], tmp_path)
    for override in fix:
        key, value = override.split("=", 1)
        now = OmegaConf.select(fixed, key)
        before = OmegaConf.select(cfg, key)
        assert now != before or key == "ckpt_path", f"{override} changes nothing"


def test_fixes_do_not_suggest_what_is_already_on(tmp_path):
    from omegaconf import OmegaConf

    plain = OmegaConf.to_container(compose_cfg(["experiment=quickstart_cpu"], tmp_path), resolve=True)
    ada = OmegaConf.to_container(compose_cfg(["experiment=limited_data_ada"], tmp_path), resolve=True)
    assert any("ganlab.augment.ADA" in f for f in shipped("d_memorises").fix(Context(plain)))
    with_ada = shipped("d_memorises").fix(Context(ada))
    assert not any("_target_" in f for f in with_ada) and "model.d_augment.0.target=0.7" in with_ada
    assert "data.max_images=null" in with_ada  # the recipe cuts the data: more of it
    smoothed = OmegaConf.to_container(
        compose_cfg(["experiment=quickstart_cpu", "loss.real_smoothing=0.1"], tmp_path), resolve=True
    )
    assert shipped("d_overpowers").fix(Context(plain)) == ["optimizer.d.lr=4e-5", "loss.real_smoothing=0.1"]
    assert shipped("d_overpowers").fix(Context(smoothed)) == ["optimizer.d.lr=4e-5"]


def test_the_ada_fix_composes_to_the_setting_the_limited_data_recipe_ships(tmp_path):
    from omegaconf import OmegaConf

    from ganlab.doctor.fixes import ADA_ON

    plain = OmegaConf.to_container(compose_cfg(["experiment=quickstart_cpu"], tmp_path), resolve=True)
    fixed = compose_cfg(["experiment=quickstart_cpu", *shipped("d_memorises").fix(Context(plain))], tmp_path)
    recipe = compose_cfg(["experiment=limited_data_ada"], tmp_path)
    assert OmegaConf.to_container(fixed.model.d_augment) == OmegaConf.to_container(recipe.model.d_augment)
    assert {k: recipe.model.d_augment[0][k] for k in ADA_ON} == ADA_ON


def test_rates_far_above_gan_practice_are_set_back_to_it_not_divided():
    from ganlab.doctor.fixes import resume_slower

    def rates(lr_g, lr_d):
        return resume_slower("best.ckpt", {"optimizer": {"g": {"lr": lr_g}, "d": {"lr": lr_d}}})

    assert rates(1.0, 1.0) == ["ckpt_path=best.ckpt", "optimizer.g.lr=2e-4", "optimizer.d.lr=2e-4"]
    assert rates(5e-3, 1e-3) == ["ckpt_path=best.ckpt", "optimizer.g.lr=2e-4", "optimizer.d.lr=5e-4"]
    assert rates(2e-4, 4e-4)[1:] == ["optimizer.g.lr=1e-4", "optimizer.d.lr=2e-4"]  # in practice: halved


def test_a_regression_after_a_resume_that_changed_the_recipe_points_back_at_the_change():
    config = {"optimizer": {"g": {"lr": 2e-4}, "d": {"lr": 1e-7}}}
    resumes = [{"iteration": 1000, "ckpt_path": "run/it0001000.ckpt", "changes": [
        {"key": "optimizer.d.lr", "checkpoint": 2e-4, "now": 1e-7, "kind": "applied"},
        {"key": "callbacks.checkpoint.dirpath", "checkpoint": "a", "now": "b", "kind": "applied"},
        {"key": "model._target_", "checkpoint": "x", "now": "y", "kind": "applied"},
    ]}]  # fmt: skip

    def fix(best_it, best="run/it0001000.ckpt"):
        ctx = Context(config, best, signals={"ref/best_it": best_it}, resumes=resumes)
        return shipped("quality_regression").fix(ctx)

    assert fix(1000) == ["ckpt_path=run/it0001000.ckpt", "optimizer.d.lr=2e-4"]  # peaked, then the change
    assert fix(1250) == ["ckpt_path=run/it0001000.ckpt", "optimizer.g.lr=1e-4", "optimizer.d.lr=5e-8"]
    # resumed into a new directory from after its best (best at 750 in the old one's best.ckpt,
    # which this run does not own): undo the change from the checkpoint the changing resume read
    assert fix(750, best=None) == ["ckpt_path=run/it0001000.ckpt", "optimizer.d.lr=2e-4"]


def test_numbers_read_as_typed():
    assert [fmt(x) for x in (4e-5, 2e-4, 0.5, 1.0)] == ["4e-5", "2e-4", "0.5", "1"]


def test_unknown_condition_is_refused():
    from ganlab.callbacks.doctor import Doctor

    with pytest.raises(ValueError, match="unknown condition"):
        Doctor(conditions={"mode_collapse": shipped("mode_collapse")}, disable=["mode_colapse"])


def test_report_reads_episodes_and_a_sweep_as_one_table(tmp_path, capsys):
    """ganlab-report on a run prints its conditions; on a folder of runs, one row per run."""
    import json

    from ganlab.doctor.record import diagnosis, episodes, read_events
    from ganlab.report import main as report_main

    def event(cond, kind, it, fix=()):
        return {"condition": cond, "event": kind, "iteration": it, "kimg": it / 10,
                "since_iteration": it - 50, "since_kimg": 0.0, "evidence": {}, "fix": list(fix),
                "message": f"{cond} {kind}"}  # fmt: skip

    sweep = tmp_path / "sweep"
    for job, events in (("0", [event("d_overpowers", "start", 400, ["optimizer.d.lr=4e-5"]),
                               event("d_overpowers", "end", 900), event("mode_collapse", "start", 1000)]),
                        ("1", [])):  # fmt: skip
        (sweep / job / ".hydra").mkdir(parents=True)
        (sweep / job / ".hydra" / "overrides.yaml").write_text(f"- experiment=quickstart_cpu\n- seed={job}\n")
        (sweep / job / "doctor.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    eps = episodes(read_events(sweep / "0"))
    assert [(e.condition, e.since, e.end) for e in eps] == [
        ("d_overpowers", 350, 900),
        ("mode_collapse", 950, None),
    ]
    assert "d_overpowers (iteration 350-900)" in diagnosis(sweep / "0")
    assert "no condition found" in diagnosis(sweep / "1")
    assert report_main([str(sweep)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[1].startswith("0 ") and "d_overpowers (350-900), mode_collapse (950)" in rows[1]
    assert "optimizer.d.lr=4e-5" in rows[1] and rows[2].startswith("1 ") and "none" in rows[2]
    assert "seed=0" in rows[1] and "experiment" not in "".join(rows)  # each run by its swept values only
    (sweep / "multirun.yaml").write_text(  # as Hydra saves it: the sweep's command line
        "hydra:\n  overrides:\n    task: [experiment=quickstart_cpu, 'seed=0,1']\n"
    )
    assert report_main([str(sweep)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[1].split()[:2] == ["0", "seed=0"] and "experiment" not in "".join(rows)


def test_the_probe_leaves_d_as_it_found_it():
    """Scoring D on the slices runs it in training mode: BatchNorm statistics and spectral norm's
    vectors would move; the probe puts them back (the doctor only looks)."""
    from types import SimpleNamespace

    from ganlab.doctor.probe import Probe
    from ganlab.models.dcgan import DCGANDiscriminator

    torch.manual_seed(0)
    D = DCGANDiscriminator(32, 3, ndf=8, spectral_norm=True).train()
    module = SimpleNamespace(D=D, G=torch.nn.Linear(1, 1), device=torch.device("cpu"),
                             memory_format=torch.contiguous_format)  # fmt: skip
    probe = Probe({"train": torch.randn(16, 3, 32, 32), "holdout": torch.randn(16, 3, 32, 32)})
    before = {k: v.clone() for k, v in D.state_dict().items()}
    out = probe.measure(module, torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32), None)
    assert "doctor/r_v" in out and any("running_mean" in k for k in before) and any("_u" in k for k in before)
    assert all(torch.equal(before[k], v) for k, v in D.state_dict().items())
