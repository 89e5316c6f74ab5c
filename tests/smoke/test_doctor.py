"""The training doctor on tiny runs that induce each failure on purpose, on a healthy tiny run,
read back from what users see: doctor.jsonl, the log, the progress line, W&B's offline run file,
the run report; across a resume; with the autopilot; and under DDP (every rank decides alike)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import CONF, ROOT, TINY, compose_cfg, load

# Fashion-MNIST as embedded, networks small enough for a CPU: G learns to spread its samples
# within ~250 iterations here (the fixture blobs never teach a tiny G that).
FASHION = [*TINY, "data=fashion_mnist", f"data.root={ROOT / 'data' / 'fashion-mnist'}", "data.batch_size=32",
           "model.generator.ngf=16", "model.discriminator.ndf=16", "trainer.max_epochs=-1",
           "trainer.log_every_n_steps=5", "callbacks.samples.every_n_iterations=0",
           "callbacks.checkpoint.every_n_iterations=50",
           "callbacks.checkpoint.every_epoch=false", "callbacks.doctor.probe_size=32"]  # fmt: skip
EARLY = ["callbacks.doctor.warmup_iterations=20"]  # induced runs fail from the start

# condition -> the overrides that induce it (the benchmark's inducers, shrunk)
INDUCED = {
    "d_overpowers": ["optimizer.d.lr=2e-3", "optimizer.g.lr=2e-6", "train.max_iterations=80"],
    "d_memorises": ["data.max_images=24", "data.batch_size=8", "train.max_iterations=200"],
    "mode_collapse": ["model.d_every=4", "optimizer.g.lr=1e-3", "train.max_iterations=80"],
    "augment_leak": [
        "model.d_augment=[{_target_: ganlab.augment.ADA, target: 0.0, speed_kimg: 0.5}]",
        "train.max_iterations=60",
    ],  # fmt: skip
    "divergence": [
        "loss=lsgan",
        "optimizer.g.lr=50",
        "optimizer.d.lr=50",
        "train.max_iterations=60",
        "train.check_every=5",
    ],  # fmt: skip
}


def train_tiny(tmp_path: Path, overrides: list[str], name: str = "run"):
    from ganlab.train import train

    cfg = compose_cfg([*FASHION, *overrides], tmp_path / name)
    try:
        return train(cfg), None
    except Exception as e:  # noqa: BLE001  (divergence stops the run: the doctor's record is what counts)
        return None, e


def events(run: Path) -> list[dict]:
    path = run / "doctor.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


@pytest.mark.parametrize("condition", sorted(INDUCED))
def test_each_condition_is_named_on_its_induced_run_with_a_fix_that_composes(condition, tmp_path, caplog):
    run = tmp_path / "run"
    _, error = train_tiny(tmp_path, [*INDUCED[condition], *EARLY])
    if condition == "divergence":
        assert type(error).__name__ == "DivergenceError"
    else:
        assert error is None, error
    starts = [e for e in events(run) if e["condition"] == condition and e["event"] == "start"]
    assert len(starts) == 1, events(run)
    e = starts[0]
    assert {"condition", "event", "iteration", "kimg", "evidence", "fix", "message"} <= set(e)
    assert e["evidence"] and e["fix"] and e["iteration"] >= e["since_iteration"]
    assert e["message"].startswith(f"{condition} since iteration {e['since_iteration']}")
    assert f"doctor: {e['message']}" in caplog.text  # one log line when it starts
    margins = json.loads((run / "doctor_margins.json").read_text())["conditions"]
    named = {x["condition"] for x in events(run) if x["event"] == "start"}
    assert {k for k, m in margins.items() if m["started"]} == named
    if condition != "divergence":  # named at or past every threshold of its start test
        assert e["margin"] <= 0 and margins[condition]["closest"]["margin"] <= 0
    # The fix is overrides a user types: they compose on this run's command line.
    fix = [f for f in e["fix"] if not f.startswith("ckpt_path=")]
    compose_cfg([*FASHION, *INDUCED[condition], *fix], tmp_path / "check")


def test_a_healthy_run_names_nothing_and_logs_the_signals(tmp_path):
    from ganlab.run.plots import read_metrics

    result, error = train_tiny(tmp_path, ["train.max_iterations=400"])
    assert error is None and events(tmp_path / "run") == []
    series = read_metrics(tmp_path / "run" / "csv" / "metrics.csv")
    for key in ("doctor/r_train", "doctor/r_v", "doctor/diversity", "doctor/g_grad_norm", "doctor/r_t",
                "doctor/conditions", "train/d_logit_real", "train/d_logit_fake"):  # fmt: skip
        assert series.get(key), key
    assert series["doctor/diversity"][-1][1] > 0.65  # G did spread: the run is healthy
    assert max(v for _, v in series["doctor/conditions"]) == 0
    # how near each condition came: a positive margin, read at a tick past the warm-up
    margins = json.loads((tmp_path / "run" / "doctor_margins.json").read_text())
    for name in ("d_overpowers", "d_memorises", "mode_collapse", "divergence"):
        closest = margins["conditions"][name]["closest"]
        assert closest["margin"] > 0 and closest["iteration"] > margins["warmup_iterations"], name


def test_quality_regression_from_the_fid_series_points_at_best_and_the_autopilot_stops(tmp_path):
    """FID evaluated in the run (the tiny feature network) and made to regress, as a late
    collapse does: from iteration 100 on, G's weights are thrown back to their initialisation. The
    doctor names it from the FID series and, with the autopilot, stops the run, keeping best.ckpt."""
    import lightning as L

    class LateCollapse(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if module.progress.iterations >= 100:
                torch.manual_seed(0)
                for m in module.G.modules():
                    if hasattr(m, "reset_parameters"):
                        m.reset_parameters()

    from ganlab.train import build, train  # noqa: F401

    overrides = [*EARLY, "train.max_iterations=300", "callbacks.evaluation.feature=tiny",
                 "callbacks.evaluation.every_n_iterations=20", "callbacks.evaluation.n=64",
                 "callbacks.evaluation.n_real=256", "callbacks.evaluation.kid_subset_size=16",
                 f"callbacks.evaluation.cache_dir={tmp_path / 'fid'}", "callbacks.doctor.act=true",
                 "callbacks.doctor.disable=[d_overpowers,mode_collapse,d_memorises]"]  # fmt: skip
    import ganlab.train as gt

    original = gt.build
    gt.build = lambda cfg, extra_callbacks=None, datamodule=None: original(cfg, [LateCollapse()], datamodule)
    try:
        result, error = train_tiny(tmp_path, overrides)
    finally:
        gt.build = original
    assert error is None, error
    run = tmp_path / "run"
    starts = [e for e in events(run) if e["condition"] == "quality_regression"]
    assert len(starts) == 1, events(run)
    best = run / "checkpoints" / "best.ckpt"
    assert starts[0]["fix"][0] == f"ckpt_path={best}" and "stopped" in starts[0]["action"]
    assert result["iterations"] < 300  # the autopilot stopped it
    assert load(best)["ganlab"]["counters"]["iterations"] <= 100


def test_wandb_alert_progress_tag_and_report_bands(tmp_path, capsys):
    """The start of a condition reaches W&B as an alert (read back from the offline run file), the
    progress line carries its tag while it holds, and ganlab-report prints the diagnosis."""
    from wandb.proto import wandb_internal_pb2 as pb

    from ganlab.loggers.wandb import _log_records
    from ganlab.report import main as report_main

    _, error = train_tiny(tmp_path, [*INDUCED["d_overpowers"], *EARLY, "logger=[csv,wandb]",
                                     "trainer.enable_progress_bar=true"])  # fmt: skip
    assert error is None
    run = tmp_path / "run"
    alerts = []
    for path in (run / "wandb").glob("*-run-*/run-*.wandb"):
        for raw in _log_records(path.read_bytes()):
            record = pb.Record()
            record.ParseFromString(raw)
            if record.WhichOneof("record_type") == "alert":
                alerts.append(record.alert)
    assert [a.title for a in alerts] == ["ganlab doctor: d_overpowers"]
    assert alerts[0].text == events(run)[0]["message"]
    assert "[doctor: d_overpowers]" in capsys.readouterr().out
    assert report_main([str(run)]) == 0
    printed = capsys.readouterr().out
    assert "d_overpowers (iteration" in printed and "optimizer.d.lr=4e-4" in printed
    assert (run / "report" / "losses.png").is_file()


def test_an_open_condition_survives_a_resume_and_is_not_announced_twice(tmp_path):
    """A condition open at a checkpoint stays open after resuming from it (no second start); one
    announced after the checkpoint by the killed run is written once, by the resumed run."""
    args = [*INDUCED["d_overpowers"], *EARLY, "train.max_iterations=100"]
    args = [a for a in args if a != "train.max_iterations=80"]
    train_tiny(tmp_path, args, "full")
    full = events(tmp_path / "full")
    start = full[0]["iteration"]
    assert [e["event"] for e in full] == ["start"] and 30 <= start < 50
    for at in (50, 30):  # after the start (open in the checkpoint), before it (the killed run's line dropped)
        run = tmp_path / f"from{at}"
        run.mkdir()
        (run / "doctor.jsonl").write_text(
            (tmp_path / "full" / "doctor.jsonl").read_text()
        )  # the killed run's
        cfg_args = [*args, "callbacks.checkpoint.every_n_iterations=10",
                    f"ckpt_path={tmp_path / 'full' / 'checkpoints' / 'it0000050.ckpt'}"]  # fmt: skip
        if at == 30:
            first = [*args, "callbacks.checkpoint.every_n_iterations=30", "train.max_iterations=30"]
            train_tiny(tmp_path, first, "first30")
            cfg_args[-1] = f"ckpt_path={tmp_path / 'first30' / 'checkpoints' / 'it0000030.ckpt'}"
        train_tiny(tmp_path, cfg_args, f"from{at}")
        got = events(run)
        assert [(e["condition"], e["event"]) for e in got] == [("d_overpowers", "start")], got
        assert got[0]["iteration"] == start


def test_autopilot_lowers_d_lr_once_and_resumes_bit_identically(tmp_path):
    args = [*INDUCED["d_overpowers"][:2], *EARLY, "callbacks.doctor.act=true", "train.max_iterations=80",
            "callbacks.checkpoint.every_n_iterations=20"]  # fmt: skip
    train_tiny(tmp_path, args, "full")
    e = events(tmp_path / "full")[0]
    assert e["action"] == "D's learning rate 0.002 -> 0.0004" and e["iteration"] < 60
    full = load(tmp_path / "full" / "checkpoints" / "last.ckpt")
    assert full["optimizer_states"][1]["param_groups"][0]["lr"] == pytest.approx(4e-4)
    train_tiny(
        tmp_path, [*args, f"ckpt_path={tmp_path / 'full' / 'checkpoints' / 'it0000060.ckpt'}"], "resumed"
    )
    resumed = load(tmp_path / "resumed" / "checkpoints" / "last.ckpt")
    for k in full["state_dict"]:
        assert torch.equal(full["state_dict"][k], resumed["state_dict"][k]), k
    assert [x["condition"] for x in events(tmp_path / "resumed")] == []  # acted and open: not again


def test_autopilot_switches_ada_on_and_a_resume_rebuilds_it(tmp_path):
    args = [*INDUCED["d_memorises"], *EARLY, "callbacks.doctor.act=true",
            "callbacks.doctor.disable=[d_overpowers,mode_collapse]",
            "callbacks.checkpoint.every_n_iterations=50"]  # fmt: skip
    train_tiny(tmp_path, args, "full")
    e = next(x for x in events(tmp_path / "full") if x["condition"] == "d_memorises")
    assert e["action"].startswith("ADA switched on") and e["iteration"] < 150
    full = load(tmp_path / "full" / "checkpoints" / "last.ckpt")
    assert "d_augment.0.p" in full["state_dict"]
    assert full["ganlab"]["techniques"]["added_augments"][0]["target"] == 0.9  # ADA as the recipe ships it
    train_tiny(
        tmp_path, [*args, f"ckpt_path={tmp_path / 'full' / 'checkpoints' / 'it0000150.ckpt'}"], "resumed"
    )
    resumed = load(tmp_path / "resumed" / "checkpoints" / "last.ckpt")
    for k in full["state_dict"]:
        assert torch.equal(full["state_dict"][k], resumed["state_dict"][k]), k


def test_every_condition_has_an_induced_test():
    shipped = OmegaConf.load(CONF / "callbacks" / "default.yaml").doctor.conditions
    assert set(INDUCED) | {"quality_regression"} == set(shipped)


def test_a_new_condition_is_one_class_and_one_entry(tmp_path):
    """A seventh condition (``tests.probes.LossAbove``, a test-only class) joins through one entry
    in ``callbacks.doctor.conditions``: tested at every tick with its declared reference from the
    history, announced with its evidence and fix, shown in the progress line's history."""
    entry = (
        "+callbacks.doctor.conditions.loss_above="
        "{_target_: tests.probes.LossAbove, threshold: 0.0, patience: 2}"
    )
    _, error = train_tiny(
        tmp_path, ["train.max_iterations=40", "callbacks.checkpoint.every_n_iterations=40", *EARLY, entry]
    )
    assert error is None, error
    (e,) = [x for x in events(tmp_path / "run") if x["condition"] == "loss_above"]
    assert e["event"] == "start" and e["since_iteration"] == 25 and e["iteration"] == 30  # 2 ticks of 5
    assert e["evidence"]["loss_g"] > 0 and e["evidence"]["loss_g"] == e["evidence"]["loss_g"]
    assert e["fix"] == ["optimizer.g.lr=0.0001"] and e["cause"] == "a test condition"
    state = load(tmp_path / "run" / "checkpoints" / "last.ckpt")["ganlab"]["history"]
    assert "loss_above" in state["conditions"]  # what the progress line shows while it holds
