"""The shipped defaults, run the way users run them: data workers as the data configs ship them
(``data=fashion_mnist``: 2 workers), signals sent to the whole process group (as SLURM, ``timeout``
and Ctrl-C send them), the default loggers (CSV + W&B offline) read back from disk, a conditional
run stopped and resumed bit-identical to an uninterrupted one, and the SLURM requeue paths
(``scontrol`` for sbatch scripts, the handler submitit installs for ``hydra/launcher=slurm``).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganlab.loggers.wandb import _log_records
from tests.conftest import ROOT

# The embedded Fashion-MNIST as shipped (num_workers 2, default loggers and callbacks), with
# networks small enough for a CPU: only what makes the run short is overridden.
SHIPPED = [
    "data=fashion_mnist",
    "data.batch_size=16",
    "model.generator.ngf=8",
    "model.discriminator.ndf=8",
    "model.nz=16",
    "model.n_fixed=16",
    "trainer=cpu",
    "trainer.log_every_n_steps=1",
    "callbacks.evaluation.every_n_iterations=0",
]
ENV = {
    "GANLAB_DATA_DIR": str(ROOT / "data"),
    "WANDB_MODE": "offline",
    "PYTHONWARNINGS": "ignore",
    "OMP_NUM_THREADS": "1",
    "HYDRA_FULL_ERROR": "0",
}


def start(args: list[str], cwd: Path, log: Path, env: dict | None = None, code: str | None = None):
    """``python -m ganlab.train args`` (or ``python -c code args``) in its own process group."""
    cmd = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "ganlab.train", *args]
    environ = {**os.environ, **ENV, "PYTHONPATH": str(ROOT), **(env or {})}
    with open(log, "w") as out:
        return subprocess.Popen(cmd, cwd=cwd, env=environ, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip


def wait_for(path: Path, p: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while not path.is_file():
        assert p.poll() is None, f"the run ended before {path.name}:\n{log.read_text()[-3000:]}"
        assert time.time() < deadline, f"no {path.name} after {timeout} s"
        time.sleep(0.05)


def finish(p: subprocess.Popen, log: Path, timeout: float = 240) -> str:
    p.wait(timeout=timeout)
    return log.read_text()


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


def counters(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)["ganlab"]["counters"]


def wandb_rows(run: Path) -> list[dict]:
    """Every history row of every W&B run file under ``run/wandb``: {key: decoded value}."""
    from wandb.proto import wandb_internal_pb2 as pb

    rows = []
    for path in sorted((run / "wandb").glob("*-run-*/run-*.wandb")):
        for raw in _log_records(path.read_bytes()):
            record = pb.Record()
            record.ParseFromString(raw)
            if record.WhichOneof("record_type") == "history":
                row: dict = {"_dir": path.parent}
                for i in record.history.item:  # images come as fields: nested_key [key, field]
                    if i.key or len(i.nested_key) == 1:
                        row[i.key or i.nested_key[0]] = json.loads(i.value_json)
                    else:
                        row.setdefault(i.nested_key[0], {})[i.nested_key[1]] = json.loads(i.value_json)
                rows.append(row)
    return rows


# -- signals to the process group, data workers as shipped -------------------------------------------------

# A stand-in for submitit: it installs its own SIGUSR2 handler before the task runs, as
# submitit's job process does for hydra/launcher=slurm, and records when and how it was called.
SUBMITIT_LIKE = """
import signal, sys
def handler(signum, frame):
    wandb = sys.modules.get("wandb")
    closed = "true" if wandb is None or wandb.run is None else "false"
    with open("handler_called.json", "w") as f:
        f.write('{"signal": %d, "wandb_closed": %s}' % (signum, closed))
    sys.exit(0)
signal.signal(signal.SIGUSR2, handler)
from ganlab.train import main
sys.argv[0] = "ganlab-train"
main()
"""


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGUSR1", "SIGUSR2"])
def test_a_signal_to_the_process_group_checkpoints_with_data_workers(sig, tmp_path):
    """The data workers get the signal too and must not take the run down: the run writes its
    checkpoint at the iteration's end, closes its loggers and exits 0. USR1 under SLURM requeues
    with scontrol; USR2 under submitit is handed to submitit's handler after the loggers closed."""
    run, log = tmp_path / "run", tmp_path / "train.log"
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "scontrol").write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/scontrol_args\n')
    (fake_bin / "scontrol").chmod(0o755)
    env = {"PATH": f"{fake_bin}:{os.environ['PATH']}"}
    if sig == "SIGUSR1":
        env["SLURM_JOB_ID"] = "4242"
    args = [
        *SHIPPED,
        "train.max_iterations=400",
        "callbacks.checkpoint.every_n_iterations=10",
        f"hydra.run.dir={run}",
    ]
    p = start(args, tmp_path, log, env, code=SUBMITIT_LIKE if sig == "SIGUSR2" else None)
    wait_for(run / "checkpoints" / "it0000010.ckpt", p, log)
    os.killpg(p.pid, getattr(signal, sig))
    out = finish(p, log)
    assert p.returncode == 0, out[-3000:]
    assert f"received {sig}" in out and "DataLoader worker" not in out
    stopped = counters(run / "checkpoints" / "last.ckpt")["iterations"]
    assert 10 <= stopped < 400 and (run / "checkpoints" / f"it{stopped:07d}.ckpt").is_file()
    assert not (run / "run.lock").exists()
    requeued = (
        (tmp_path / "scontrol_args").read_text().split() if (tmp_path / "scontrol_args").exists() else None
    )
    assert requeued == (["requeue", "4242"] if sig == "SIGUSR1" else None)
    if sig == "SIGUSR2":
        called = json.loads((tmp_path / "handler_called.json").read_text())
        assert called == {"signal": signal.SIGUSR2, "wandb_closed": True}


def run_in_terminal(args: list[str], cwd: Path, until: Path, presses: int, timeout: float = 240):
    """``python -m ganlab.train args`` in a pseudo-terminal, as a person runs it: once ``until``
    exists, Ctrl-C typed ``presses`` times (the terminal sends SIGINT to its foreground process
    group: the run and its data workers). Returns (exit status, what the terminal showed)."""
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # the child: a session whose controlling terminal is the pty
        os.chdir(cwd)
        os.environ.update({**ENV, "PYTHONPATH": str(ROOT)})
        os.execv(sys.executable, [sys.executable, "-m", "ganlab.train", *args])
    shown, typed, deadline = b"", 0, time.time() + timeout
    while time.time() < deadline:
        if typed < presses and until.is_file():
            os.write(fd, b"\x03")  # Ctrl-C, as the terminal's line discipline reads it
            typed += 1
            time.sleep(0.05)
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def test_ctrl_c_in_a_terminal_checkpoints_and_says_how_to_resume(tmp_path):
    """The first Ctrl-C: a checkpoint at the iteration's end, the resume command on the screen,
    exit status 130, data workers as shipped; resuming continues from it. A second Ctrl-C stops at
    once, without waiting for the iteration."""
    run = tmp_path / "run"
    args = [*SHIPPED, "train.max_iterations=400", "callbacks.checkpoint.every_n_iterations=10",
            "callbacks.report=null", f"hydra.run.dir={run}"]  # fmt: skip
    code, shown = run_in_terminal(args, tmp_path, run / "checkpoints" / "it0000010.ckpt", presses=1)
    assert code == 130, shown[-3000:]
    assert "Ctrl-C (SIGINT): checkpoint at GAN iteration" in shown and "DataLoader worker" not in shown
    stopped = counters(run / "checkpoints" / "last.ckpt")["iterations"]
    assert 10 <= stopped < 400 and (run / "checkpoints" / f"it{stopped:07d}.ckpt").is_file()
    assert f"Resume with ckpt_path={run / 'checkpoints' / 'last.ckpt'}" in shown.replace("\r\n", "")
    assert not (run / "run.lock").exists()
    # Twice: the run stops without its graceful checkpoint.
    run2 = tmp_path / "run2"
    args2 = [a if not a.startswith("hydra.run.dir") else f"hydra.run.dir={run2}" for a in args]
    code, shown = run_in_terminal(args2, tmp_path, run2 / "checkpoints" / "it0000010.ckpt", presses=2)
    assert code != 0 and "Ctrl-C again to stop at once" in shown, shown[-3000:]


def test_conditional_run_stopped_and_resumed_is_bit_identical(tmp_path):
    """A conditional run (labels from the data, class-conditional G and D) with the shipped data
    workers and loggers: SIGTERM to its process group, then ``ckpt_path=last`` into the same
    directory, ends with the weights, counters and optimizer states of an uninterrupted run."""
    common = [*SHIPPED, "data.conditional=true", "model.ema_half_life_kimg=1", "train.max_iterations=60",
              "callbacks.checkpoint.every_n_iterations=20", "callbacks.report=null"]  # fmt: skip
    full, run = tmp_path / "full", tmp_path / "run"
    p = start([*common, f"hydra.run.dir={full}"], tmp_path, tmp_path / "full.log")
    p_run = start([*common, f"hydra.run.dir={run}"], tmp_path, tmp_path / "run.log")
    wait_for(run / "checkpoints" / "it0000020.ckpt", p_run, tmp_path / "run.log")
    os.killpg(p_run.pid, signal.SIGTERM)
    assert p_run.wait(240) == 0, (tmp_path / "run.log").read_text()[-3000:]
    assert p.wait(240) == 0, (tmp_path / "full.log").read_text()[-3000:]
    stopped = counters(run / "checkpoints" / "last.ckpt")["iterations"]
    assert 20 <= stopped < 60
    p = start([*common, f"hydra.run.dir={run}", "ckpt_path=last"], tmp_path, tmp_path / "resume.log")
    assert p.wait(240) == 0, (tmp_path / "resume.log").read_text()[-3000:]
    a, b = (
        torch.load(d / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
        for d in (full, run)
    )
    assert a["ganlab"]["counters"] == b["ganlab"]["counters"] and a["ganlab"]["counters"]["iterations"] == 60
    assert a["ganlab"]["config"]["model"]["num_classes"] == 10
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    for sa, sb in zip(a["optimizer_states"], b["optimizer_states"]):
        for pa, pb in zip(sa["state"].values(), sb["state"].values()):
            assert all(torch.equal(pa[k], pb[k]) for k in pa)


# -- kill -9 and resume with the default loggers, read back from disk ---------------------------------------


def test_kill_9_chain_keeps_every_logged_iteration_once_in_wandb_and_csv(tmp_path):
    """Three kill -9s at unpredictable moments, each followed by ``ckpt_path=last`` into the same
    directory, then a run to the end. Read back from disk: the CSV has every iteration once, the
    W&B run files (one per attempt, one run id) hold every logged iteration exactly once between
    them, and each W&B sample grid has the pixels of the PNG grid of its iteration."""
    run, total = tmp_path / "run", 120
    args = [*SHIPPED, f"train.max_iterations={total}", "callbacks.checkpoint.every_n_iterations=10",
            "callbacks.samples.every_n_iterations=10", "callbacks.report=null",
            f"hydra.run.dir={run}"]  # fmt: skip
    rng, resumed_at = np.random.default_rng(0), 0
    for attempt in range(3):
        log = tmp_path / f"attempt{attempt}.log"
        p = start([*args, "ckpt_path=last"], tmp_path, log)
        wait_for(run / "checkpoints" / f"it{resumed_at + 20:07d}.ckpt", p, log)  # two checkpoints of its own
        time.sleep(float(rng.uniform(0.0, 0.5)))  # anywhere in the next iterations
        p.kill()  # SIGKILL to the main process: no handler, no flush
        p.wait()
        resumed_at = counters(run / "checkpoints" / "last.ckpt")["iterations"]
    log = tmp_path / "last.log"
    p = start([*args, "ckpt_path=last"], tmp_path, log)
    out = finish(p, log)
    assert p.returncode == 0 and f"finished after {total} GAN iterations" in out, out[-3000:]

    with open(run / "csv" / "metrics.csv") as f:
        steps = [int(float(r["step"])) for r in csv.DictReader(f) if r.get("train/loss_d")]
    assert steps == list(range(1, total + 1))
    rows = wandb_rows(run)
    logged = Counter(int(r["trainer/global_step"]) for r in rows if "train/loss_d" in r)
    assert sorted(logged) == list(range(1, total + 1)) and set(logged.values()) == {1}, logged
    run_id = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["ganlab"][
        "wandb_id"
    ]
    dirs = sorted((run / "wandb").glob("offline-run-*"))
    assert len(dirs) == 4 and all(d.name.endswith(run_id) for d in dirs)

    grids = [r for r in rows if "samples/fixed_noise" in r]
    assert grids and Counter(int(r["trainer/global_step"]) for r in grids).most_common(1)[0][1] == 1
    for r in grids:
        it = int(r["trainer/global_step"])
        (name,) = r["samples/fixed_noise"]["filenames"]
        shown = np.asarray(Image.open(r["_dir"] / "files" / name).convert("RGB"))
        written = np.asarray(Image.open(run / "samples" / f"it{it:07d}.png").convert("RGB"))
        assert shown.max() > 0 and np.array_equal(shown, written), it  # the grid's pixels, not black


def test_the_doctor_keeps_an_open_condition_across_kill_9_with_the_shipped_defaults(tmp_path):
    """D overpowering G from the start, the shipped data workers and loggers: the doctor names it,
    the run is killed with -9 after a checkpoint taken while the condition held, and the resumed
    run (ckpt_path=last) keeps it open: doctor.jsonl holds one start, W&B at most one alert."""
    run, log = tmp_path / "run", tmp_path / "first.log"
    args = [*SHIPPED, "optimizer.d.lr=2e-3", "optimizer.g.lr=2e-6", "callbacks.doctor.warmup_iterations=20",
            "train.max_iterations=80", "callbacks.checkpoint.every_n_iterations=10", "callbacks.report=null",
            f"hydra.run.dir={run}"]  # fmt: skip
    p = start(args, tmp_path, log)
    wait_for(run / "doctor.jsonl", p, log)
    deadline = time.time() + 60
    while not (run / "doctor.jsonl").read_text().endswith("\n"):  # the file exists before its line is in
        assert time.time() < deadline, "doctor.jsonl stayed empty"
        time.sleep(0.02)
    first = json.loads((run / "doctor.jsonl").read_text().splitlines()[0])
    after = (first["iteration"] // 10 + 1) * 10  # the first checkpoint taken while it held ...
    # ... and last.ckpt surely written for it: the next snapshot's save starts after that one's ended
    wait_for(run / "checkpoints" / f"it{after + 10:07d}.ckpt", p, log)
    p.kill()
    p.wait()
    p = start([*args, "ckpt_path=last"], tmp_path, tmp_path / "resume.log")
    out = finish(p, tmp_path / "resume.log")
    assert p.returncode == 0 and "finished after 80 GAN iterations" in out, out[-3000:]
    lines = [json.loads(x) for x in (run / "doctor.jsonl").read_text().splitlines()]
    assert [(e["condition"], e["event"]) for e in lines] == [("d_overpowers", "start")]
    assert "doctor: d_overpowers since" not in out  # the resumed run did not announce it again ...
    assert "[doctor: d_overpowers]" in out  # ... and its progress line still shows it open
    from wandb.proto import wandb_internal_pb2 as pb

    alerts = 0
    for path in sorted((run / "wandb").glob("*-run-*/run-*.wandb")):
        for raw in _log_records(path.read_bytes()):
            record = pb.Record()
            record.ParseFromString(raw)
            alerts += record.WhichOneof("record_type") == "alert"
    assert alerts <= 1
