"""Nothing lost, nothing silently wrong: divergence, honest resume, logs across resumes, the run
lock, leftovers of killed writes, and bad inputs named in one message."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch

from ganlab.checkpoint.format import read_checkpoint
from ganlab.utils.errors import CheckpointError, DivergenceError, ResumeConfigError
from tests.conftest import ROOT, TINY, fit, load, run_cli


def all_finite(path: Path) -> bool:
    sd = load(path)["state_dict"]
    return all(torch.isfinite(v).all() for v in sd.values() if v.is_floating_point())


# --- divergence -------------------------------------------------------------------------------


def test_divergence_never_writes_a_bad_checkpoint_and_names_the_good_one(tmp_path, image_dir):
    ckpts = tmp_path / "checkpoints"
    with pytest.raises(DivergenceError) as err:
        # G's first update leaves huge but finite weights; the next iteration's fakes are NaN.
        fit(["optimizer.g.lr=1e30", "callbacks.checkpoint.every_n_iterations=1"], tmp_path, image_dir)
    written = sorted(ckpts.glob("*.ckpt"))
    assert written and all(all_finite(p) for p in written)
    newest = max((p for p in written if p.name != "last.ckpt"), key=lambda p: p.stat().st_mtime_ns)
    assert f"resume with ckpt_path={newest}" in str(err.value) and "NaN/inf" in str(err.value)


def test_finite_divergence_past_the_bound_stops(tmp_path, image_dir):
    with pytest.raises(DivergenceError, match=r"exceeded train.loss_bound=0.01\. No checkpoint was written"):
        fit(["train.loss_bound=0.01", "train.check_every=1"], tmp_path, image_dir)
    assert not list((tmp_path / "checkpoints").glob("*.ckpt"))


def test_rollback_reloads_the_good_checkpoint_with_lower_learning_rates(tmp_path, image_dir):
    options = [
        "optimizer.g.lr=1e30",
        "callbacks.checkpoint.every_n_iterations=1",
        "train.on_divergence=rollback",
        "train.max_rollbacks=2",
        "trainer.max_epochs=3",
    ]
    with pytest.raises(DivergenceError, match="rolled back 2 times already"):
        fit(options, tmp_path, image_dir)
    events = [json.loads(line) for line in (tmp_path / "rollbacks.jsonl").read_text().splitlines()]
    assert [e["lr_g"] for e in events] == [5e29, 2.5e29] and [e["lr_d"] for e in events] == [1e-4, 5e-5]
    assert [e["rollbacks"] for e in events] == [1, 2]
    assert all(Path(e["checkpoint"]).is_file() for e in events)
    assert all(all_finite(p) for p in (tmp_path / "checkpoints").glob("*.ckpt"))
    with open(tmp_path / "csv" / "metrics.csv") as f:
        assert [float(r["train/rollbacks"]) for r in csv.DictReader(f) if r.get("train/rollbacks")] == [1, 2]


# --- resume with a changed configuration ----------------------------------------------------


@pytest.fixture()
def first_run(tmp_path, image_dir):
    run = tmp_path / "first"
    fit(["callbacks.checkpoint.every_n_iterations=2"], run, image_dir)
    return run / "checkpoints" / "it0000002.ckpt"


def test_resume_refuses_architecture_changes_naming_keys_and_values(first_run, tmp_path, image_dir):
    with pytest.raises(ResumeConfigError) as err:
        fit(
            [f"ckpt_path={first_run}", "model.generator.ngf=16", "data.image_size=64"],
            tmp_path / "r",
            image_dir,
        )
    msg = str(err.value)
    assert "model.generator.ngf: 8 -> 16" in msg and "data.image_size: 32 -> 64" in msg


def test_resume_refuses_data_or_seed_changes_unless_allowed(first_run, tmp_path, image_dir):
    with pytest.raises(ResumeConfigError, match=r"seed: 42 -> 7.*train.allow_resume_changes=true"):
        fit([f"ckpt_path={first_run}", "seed=7"], tmp_path / "r1", image_dir)
    fit([f"ckpt_path={first_run}", "seed=7", "train.allow_resume_changes=true"], tmp_path / "r2", image_dir)
    diff = json.loads((tmp_path / "r2" / "resume_diff.json").read_text())
    assert {"key": "seed", "checkpoint": 42, "now": 7, "kind": "data"} in diff[0]["changes"]


def test_resume_applies_new_learning_rates_and_records_them(first_run, tmp_path, image_dir):
    run = tmp_path / "r"
    fit([f"ckpt_path={first_run}", "optimizer.d.lr=1e-3", "loss.real_smoothing=0.1"], run, image_dir)
    lrs = [s["param_groups"][0]["lr"] for s in load(run / "checkpoints" / "last.ckpt")["optimizer_states"]]
    assert lrs == [2e-4, 1e-3]  # [G, D]: the new D rate is what ran, not the checkpoint's
    changes = {c["key"]: c for c in json.loads((run / "resume_diff.json").read_text())[0]["changes"]}
    assert changes["optimizer.d.lr"] == {
        "key": "optimizer.d.lr",
        "checkpoint": 2e-4,
        "now": 1e-3,
        "kind": "applied",
    }
    assert changes["loss.real_smoothing"]["kind"] == "applied"
    hparams = (run / "csv" / "hparams.yaml").read_text()
    assert "resume_diff/optimizer.d.lr" in hparams
    assert (
        load(run / "checkpoints" / "last.ckpt")["ganlab"]["config"]["optimizer"]["d"]["lr"] == 1e-3
    )  # provenance


# --- a killed run, resumed into the same directory --------------------------------------------


def test_kill_9_then_resume_into_the_same_directory(tmp_path, image_dir):
    """The CSV continues without a gap or a repeated iteration, the killed run's lock is taken
    over, its half-written temp files are cleared, and the W&B run id carries over."""
    run = tmp_path / "run"
    args = [
        *TINY, "trainer.max_epochs=40", "callbacks.checkpoint.every_n_iterations=10", "logger=default",
        "data=image_folder", f"data.root={image_dir}", f"hydra.run.dir={run}",
    ]  # fmt: skip
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONWARNINGS": "ignore"}
    p = subprocess.Popen([sys.executable, "-m", "ganlab.train", *args], cwd=tmp_path, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 240
    while not (run / "checkpoints" / "it0000030.ckpt").is_file():
        assert p.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.05)
    time.sleep(0.3)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert (run / "run.lock").is_file()  # left behind by the killed process
    debris = run / "checkpoints" / ".last.ckpt.tmp999999999"
    debris.write_bytes(b"half a checkpoint")
    killed_id = read_checkpoint(run / "checkpoints" / "last.ckpt")["ganlab"]["wandb_id"]
    r = run_cli([*args, "ckpt_path=last"], tmp_path, env={"WANDB_MODE": "offline"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert not debris.exists() and not (run / "run.lock").exists()
    with open(run / "csv" / "metrics.csv") as f:
        steps = [int(float(row["step"])) for row in csv.DictReader(f) if row.get("train/loss_d")]
    assert steps == list(range(1, 201)), steps[:5]  # log_every_n_steps=1, 40 epochs x 5 iterations
    assert load(run / "checkpoints" / "last.ckpt")["ganlab"]["wandb_id"] == killed_id
    runs = sorted((run / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(r.name.endswith(killed_id) for r in runs)  # one W&B run, continued


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1], ids=["SIGTERM", "SIGUSR1"])
def test_preemption_signal_checkpoints_and_the_resume_is_exact(sig, tmp_path, image_dir):
    """SIGTERM/SIGUSR1: a checkpoint at the next iteration boundary, exit status 0; resuming
    from it (ckpt_path=last, same directory) ends bit-identical to an uninterrupted run."""
    common = [
        *TINY, "trainer.max_epochs=30", "callbacks.checkpoint.every_n_iterations=40",
        "data=image_folder", f"data.root={image_dir}",
    ]  # fmt: skip
    full, run = tmp_path / "full", tmp_path / "run"
    r = run_cli([*common, f"hydra.run.dir={full}"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "ganlab.train", *common, f"hydra.run.dir={run}"]
    p = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 240
    while not (run / "checkpoints" / "it0000040.ckpt").is_file():
        assert p.poll() is None and time.time() < deadline, "the run ended before the signal"
        time.sleep(0.05)
    p.send_signal(sig)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err[-3000:]
    stopped = load(run / "checkpoints" / "last.ckpt")["ganlab"]["counters"]["iterations"]
    assert 40 <= stopped < 150 and (run / "checkpoints" / f"it{stopped:07d}.ckpt").is_file()
    assert f"received {sig.name}" in out + err
    r = run_cli([*common, f"hydra.run.dir={run}", "ckpt_path=last"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = load(full / "checkpoints" / "last.ckpt"), load(run / "checkpoints" / "last.ckpt")
    assert a["ganlab"]["counters"] == b["ganlab"]["counters"] and a["ganlab"]["counters"]["iterations"] == 150
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k


class SlowIteration(L.Callback):
    """Test-only (``+callbacks.slow._target_=tests.smoke.test_reliability.SlowIteration``): the
    iteration after ``after`` iterations takes ``seconds`` before its step, once ``marker`` is
    written: a run still busy with its iteration long after a first Ctrl-C."""

    def __init__(self, after: int, seconds: float, marker: str) -> None:
        self.after, self.seconds, self.marker = after, seconds, Path(marker)

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if module.progress.iterations == self.after:
            self.marker.write_text(str(os.getpid()))
            time.sleep(self.seconds)  # a signal handler that returns lets the sleep go on (PEP 475)


def _type_ctrl_c_while_busy(args: list[str], cwd: Path, marker: Path, wait_after_first: float = 3.0):
    """``python -m ganlab.train args`` in a pseudo-terminal; once ``marker`` exists, Ctrl-C (the
    byte a terminal's line discipline turns into SIGINT to its foreground process group), then,
    ``wait_after_first`` seconds later, a second one. Returns (alive after the first press,
    seconds from the second press to the exit, exit status, what the terminal showed)."""
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # the child: a session whose controlling terminal is the pty
        os.chdir(cwd)
        os.environ.update(
            {
                "PYTHONPATH": str(ROOT),
                "OMP_NUM_THREADS": "1",
                "WANDB_MODE": "offline",
                "PYTHONWARNINGS": "ignore",
                "HYDRA_FULL_ERROR": "0",
            }
        )
        os.execv(sys.executable, [sys.executable, "-m", "ganlab.train", *args])
    shown, first, second, alive, exited = b"", None, None, None, None
    deadline = time.time() + 240  # to the first press; then 60 s from the second
    while time.time() < (deadline if second is None else second + 60):
        now = time.time()
        if first is None and marker.is_file():
            os.write(fd, b"\x03")
            first = now
        elif first is not None and second is None and now - first >= wait_after_first:
            alive = os.waitpid(pid, os.WNOHANG) == (0, 0)
            os.write(fd, b"\x03")
            second = now
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the terminal: it is ending
                chunk = b""
            if not chunk:
                exited = time.time()
                break
            shown += chunk
    if exited is None:  # still running: the presses did not stop it
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    took = None if second is None or exited is None else exited - second
    return alive, took, os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def test_a_second_ctrl_c_stops_at_once_a_run_the_first_one_did_not(tmp_path, image_dir):
    """The first Ctrl-C asks for a checkpoint at the iteration's end; an iteration that goes on
    (here one that sleeps for minutes) keeps the run alive after it. The second Ctrl-C ends the
    process within seconds, without waiting for that iteration and without the graceful
    checkpoint, and with another exit status than the first press's 130."""
    run, marker = tmp_path / "run", tmp_path / "sleeping"
    args = [
        *TINY,
        "data=image_folder",
        f"data.root={image_dir}",
        f"hydra.run.dir={run}",
        "+callbacks.slow._target_=tests.smoke.test_reliability.SlowIteration",
        "+callbacks.slow.after=2",
        "+callbacks.slow.seconds=600",
        f"+callbacks.slow.marker={marker}",
    ]
    alive, took, code, shown = _type_ctrl_c_while_busy(args, tmp_path, marker)
    assert alive, "the first Ctrl-C alone stopped the run: " + shown[-3000:]
    assert "Ctrl-C again to stop at once" in shown, shown[-3000:]
    assert took is not None and took < 30, (took, shown[-3000:])  # the iteration had ~600 s to go
    assert code not in (0, 130), (code, shown[-3000:])
    assert "received Ctrl-C (SIGINT): checkpoint" not in shown, shown[-3000:]
    assert load(run / "checkpoints" / "last.ckpt")["ganlab"]["counters"]["iterations"] == 2


def test_time_based_checkpoints(tmp_path, image_dir):
    fit(
        ["callbacks.checkpoint.every_n_iterations=0", "callbacks.checkpoint.every_minutes=1e-9"],
        tmp_path,
        image_dir,
    )
    # Every iteration is "late": one checkpoint per iteration (the epoch end adds none).
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("it*.ckpt")) == [
        f"it000000{i}.ckpt" for i in range(1, 6)
    ]


def test_a_second_process_in_the_same_directory_is_refused(tmp_path, image_dir):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.lock").write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename}))
    (run / ".hydra").mkdir()
    (run / ".hydra" / "config.yaml").write_text("the live run's configuration\n")
    r = run_cli([*TINY, "data=image_folder", f"data.root={image_dir}", f"hydra.run.dir={run}"], tmp_path)
    assert r.returncode == 1 and f"in use by process {os.getpid()}" in r.stderr
    assert "Traceback" not in r.stderr
    # the refused process wrote nothing into the live run's directory
    assert (run / ".hydra" / "config.yaml").read_text() == "the live run's configuration\n"
    assert sorted(p.name for p in (run / ".hydra").iterdir()) == ["config.yaml"]


def test_unwritable_output_directory_is_found_at_start(tmp_path, image_dir):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    r = run_cli(
        [*TINY, "data=image_folder", f"data.root={image_dir}", f"hydra.run.dir={blocker}/run"], tmp_path
    )
    assert r.returncode != 0 and "a_file" in r.stderr
    cache = tmp_path / "cache_file"
    cache.write_text("x")
    args = [*TINY, "data=image_folder", f"data.root={image_dir}", f"hydra.run.dir={tmp_path / 'ok'}"]
    r = run_cli([*args, f"callbacks.evaluation.cache_dir={cache}/fid"], tmp_path)
    assert r.returncode == 1 and f"cannot write to '{cache}/fid'" in r.stderr and "Traceback" not in r.stderr


# --- bad inputs, one message each --------------------------------------------------------------


def test_bad_checkpoint_files_are_named(tmp_path):
    cases = {
        "empty.ckpt": b"",
        "text.ckpt": b"hello, not a checkpoint\n",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    torch.save({"state_dict": {}}, tmp_path / "plain_dict.ckpt")
    torch.save(torch.zeros(3), tmp_path / "tensor.ckpt")
    expected = {
        "empty.ckpt": "the file is empty",
        "text.ckpt": "not a readable PyTorch checkpoint",
        "plain_dict.ckpt": "not a ganlab checkpoint",
        "tensor.ckpt": "holds a Tensor, not a ganlab checkpoint",
    }
    for name, text in expected.items():
        with pytest.raises(CheckpointError) as err:
            read_checkpoint(tmp_path / name)
        assert f"ckpt_path={tmp_path / name}" in str(err.value) and text in str(err.value), str(err.value)
        assert "weights_only=False" not in str(err.value)


# --- defects of the shipped path (issue 17), each named by what a user did ----------------------------


def test_a_conditional_run_resumes_and_state_changes_are_refused_by_name(tmp_path, image_dir):
    """A conditional run (classes set from the data) resumes; turning G_ema or the labels on or
    off at resume is refused in one message naming the setting, not a crash in load_state_dict."""
    first = tmp_path / "first"
    fit(["data.conditional=true"], first, image_dir)
    ckpt = first / "checkpoints" / "last.ckpt"
    result, _ = fit(
        ["data.conditional=true", f"ckpt_path={ckpt}", "trainer.max_epochs=2"], tmp_path / "r", image_dir
    )
    assert result["iterations"] == 10 and load(tmp_path / "r" / "checkpoints" / "last.ckpt")["ganlab"][
        "config"
    ]["model"]["class_names"] == ["class_0", "class_1", "class_2"]
    refused = {
        "model.ema_half_life_kimg=5": "model.ema_half_life_kimg: None -> 5",
        "data.conditional=false": "data.conditional: True -> False",
    }
    for change, named in refused.items():
        overrides = ["data.conditional=true", change, f"ckpt_path={ckpt}", "trainer.max_epochs=2"]
        with pytest.raises(ResumeConfigError) as err:
            fit(overrides, tmp_path / change.split("=")[0], image_dir)
        assert named in str(err.value), str(err.value)


def test_rollback_rates_are_logged_as_used_and_kept_by_a_resume(tmp_path, image_dir):
    """After a rollback the logged rate is the rate the optimizers use, and a resume from a
    checkpoint written after it continues at that rate, not at the configured one that diverged."""
    fit([], tmp_path / "good", image_dir)  # 5 sound iterations
    good = tmp_path / "good" / "checkpoints" / "last.ckpt"
    # lr 1e30 from there diverges; the rollback to the good checkpoint scales it to 1e30 * 1e-34 = 1e-4
    options = ["optimizer.g.lr=1e30", "train.on_divergence=rollback", "train.rollback_lr_factor=1e-34",
               "callbacks.checkpoint.every_n_iterations=0"]  # fmt: skip
    run = tmp_path / "run"
    fit([*options, f"ckpt_path={good}", "trainer.max_epochs=2"], run, image_dir)
    (event,) = [json.loads(line) for line in (run / "rollbacks.jsonl").read_text().splitlines()]
    lr_g = load(run / "checkpoints" / "last.ckpt")["optimizer_states"][0]["param_groups"][0]["lr"]
    assert event["lr_g"] == pytest.approx(1e-4) and lr_g == pytest.approx(1e-4)
    with open(run / "csv" / "metrics.csv") as f:
        logged = [float(r["train/lr_g"]) for r in csv.DictReader(f) if r.get("train/lr_g")]
    assert logged[-1] == pytest.approx(1e-4)
    resumed = tmp_path / "resumed"
    last = run / "checkpoints" / "last.ckpt"
    result, _ = fit([*options, f"ckpt_path={last}", "trainer.max_epochs=3"], resumed, image_dir)
    assert result["iterations"] == 15 and not (resumed / "rollbacks.jsonl").exists()  # no second divergence
    resumed_lr = load(resumed / "checkpoints" / "last.ckpt")["optimizer_states"][0]["param_groups"][0]["lr"]
    assert resumed_lr == pytest.approx(1e-4)


def test_ckpt_path_last_skips_a_truncated_last_ckpt(tmp_path, image_dir):
    run = tmp_path / "run"
    fit(["callbacks.checkpoint.every_n_iterations=2"], run, image_dir)
    last = run / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])  # cut short, as a copy or another tool may leave it
    result, _ = fit(
        ["callbacks.checkpoint.every_n_iterations=2", "ckpt_path=last", "trainer.max_epochs=2"],
        run,
        image_dir,
    )
    assert result["iterations"] == 10  # resumed from it0000005.ckpt, the newest intact snapshot
    assert load(last)["ganlab"]["counters"]["iterations"] == 10


def test_a_requeued_slurm_job_takes_over_its_own_lock_from_another_host(tmp_path, monkeypatch):
    from ganlab.run.directory import RunLock
    from ganlab.utils.errors import RunDirError

    run = tmp_path / "run"
    run.mkdir()
    stale = {"pid": 1, "host": "node-17", "slurm_job": "4242", "slurm_attempt": 0}
    (run / "run.lock").write_text(json.dumps(stale))
    with pytest.raises(RunDirError, match="in use by process 1 on node-17"):
        RunLock(run).acquire()  # not a SLURM job: another host's lock stands
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    lock = RunLock(run).acquire()  # the requeued attempt of the same job
    assert json.loads((run / "run.lock").read_text())["slurm_attempt"] == 1
    lock.release()
    (run / "run.lock").write_text(json.dumps(stale))
    monkeypatch.setenv("SLURM_JOB_ID", "5555")  # another job: refused
    with pytest.raises(RunDirError):
        RunLock(run).acquire()


def test_a_requeued_slurm_job_resumes_without_being_told(tmp_path, image_dir, monkeypatch):
    run = tmp_path / "run"
    fit([], run, image_dir)
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    result, cfg = fit(["trainer.max_epochs=2"], run, image_dir)
    assert result["ckpt_path"] == str(run / "checkpoints" / "last.ckpt") and result["iterations"] == 10
    assert cfg.ckpt_path is None  # the composed configuration is left as it was
