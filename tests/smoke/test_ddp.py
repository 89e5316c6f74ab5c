"""Data parallelism: strategy selection, per-rank randomness, and real multi-process runs on CPU
(gloo over loopback) as users type them: `trainer.devices=2`, and 2 nodes x 1 process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ganlab.training.ddp import GANDDPStrategy, resolve_strategy
from ganlab.training.rng import rank_seed, seed_rank_streams
from tests.conftest import ROOT, TINY, load

# TINY without `trainer=cpu`: the mission command keeps the default trainer and picks the CPU.
BASE = [o for o in TINY if o != "trainer=cpu"] + [
    "trainer.accelerator=cpu",
    "trainer.precision=32-true",
    "data.batch_size=4",
    "trainer.max_epochs=2",
    "callbacks.checkpoint.every_n_iterations=3",
    "callbacks.samples.every_n_iterations=0",
]


# --- strategy selection (unit) -------------------------------------------------------------------


def test_one_device_keeps_lightnings_single_device_strategy():
    assert resolve_strategy("auto", "cpu", 1, 1) == "auto"


@pytest.mark.parametrize(
    ("strategy", "devices", "nodes", "start"),
    [
        ("auto", 2, 1, "popen"),
        ("auto", 1, 2, "popen"),
        ("ddp", 2, 1, "popen"),
        ("ddp_find_unused_parameters_true", 2, 1, "popen"),
        ("ddp_spawn", 2, 1, "spawn"),
    ],
)
def test_ddp_names_become_the_gan_strategy(strategy, devices, nodes, start):
    s = resolve_strategy(strategy, "cpu", devices, nodes)
    assert isinstance(s, GANDDPStrategy) and s._start_method == start
    assert s._ddp_kwargs == {"broadcast_buffers": False}  # per-rank BN statistics, no find_unused


@pytest.mark.parametrize("strategy", ["fsdp", "deepspeed", "dp"])
def test_strategies_that_cannot_train_a_gan_are_refused_with_the_override(strategy):
    with pytest.raises(ValueError, match=rf"trainer.strategy={strategy} cannot .*trainer.strategy=ddp"):
        resolve_strategy(strategy, "cpu", 2, 1)


def test_sync_batchnorm_on_cpu_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="SyncBatchNorm runs on CUDA.*trainer.sync_batchnorm=false"):
        resolve_strategy("auto", "cpu", 2, 1, sync_batchnorm=True)


def test_rank_streams_differ_and_repeat():
    assert len({rank_seed(42, r) for r in range(8)}) == 8 and rank_seed(42, 1) != rank_seed(43, 0)
    draws = []
    for rank in (0, 1, 0):
        seed_rank_streams(42, rank)
        draws.append(torch.randn(4))
    assert not torch.equal(draws[0], draws[1]) and torch.equal(draws[0], draws[2])


# --- real multi-process runs (CPU, gloo) ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env(**extra) -> dict:
    e = {**os.environ, "PYTHONPATH": str(ROOT), "HYDRA_FULL_ERROR": "0", "PYTHONWARNINGS": "ignore"}
    for k in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        e.pop(k, None)
    return {**e, **extra}


def train_args(run_dir: Path, data: list[str], extra: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "ganlab.train", *BASE, "model=dcgan", *data, f"hydra.run.dir={run_dir}",
        "+callbacks.probe._target_=tests.probes.RankProbe", f"+callbacks.probe.dirpath={run_dir}",
        *extra,
    ]  # fmt: skip


def run_devices(run_dir: Path, data: list[str], extra: list[str]) -> str:
    """One node, `trainer.devices=2`: Lightning launches the second process itself. Returns
    both processes' output."""
    r = subprocess.run(
        train_args(run_dir, data, ["trainer.devices=2", *extra]),
        cwd=run_dir.parent, capture_output=True, text=True, timeout=300,
        env=env(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port())),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-4000:]
    return r.stdout + r.stderr


def run_nodes(run_dir: Path, image_dir: Path, extra: list[str]) -> None:
    """Two nodes of one process each, as a cluster starts them: one command per node, told its
    NODE_RANK and the master's address (here loopback)."""
    port = str(free_port())
    procs = []
    for node in (0, 1):
        d = run_dir if node == 0 else run_dir.with_name(run_dir.name + "_node1")
        procs.append(
            subprocess.Popen(
                train_args(
                    d,
                    ["data=image_folder", f"data.root={image_dir}"],
                    ["trainer.devices=1", "trainer.num_nodes=2", *extra],
                ),
                cwd=run_dir.parent,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env(MASTER_ADDR="127.0.0.1", MASTER_PORT=port, NODE_RANK=str(node)),
            )  # fmt: skip
        )
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-4000:]
    # The second node's probe rows belong with the first's.
    other = run_dir.with_name(run_dir.name + "_node1") / "probe_rank1.jsonl"
    (run_dir / "probe_rank1.jsonl").write_text(other.read_text())


def probes(run_dir: Path) -> list[list[dict]]:
    return [
        [json.loads(line) for line in (run_dir / f"probe_rank{r}.jsonl").read_text().splitlines()]
        for r in (0, 1)
    ]


def check_ranks(run_dir: Path, iterations: int, evaluated: tuple[int, ...] = ()) -> None:
    """Ranks identical after every update; each rank drew its own latents at every iteration.
    BatchNorm running statistics are per rank, except right after an evaluation, which gives
    every rank rank 0's."""
    r0, r1 = probes(run_dir)
    assert [row["iteration"] for row in r0] == list(range(1, iterations + 1))
    for a, b in zip(r0, r1):
        assert a["iteration"] == b["iteration"]
        assert a["G"] == b["G"] and a["D"] == b["D"] and a["G_ema"] == b["G_ema"], a["iteration"]
        assert a["z"] != b["z"], f"ranks drew the same latents at iteration {a['iteration']}"
        assert (a["G_buffers"] == b["G_buffers"]) == (a["iteration"] in evaluated), a["iteration"]


def check_resume(full: Path, resumed: Path, start: int) -> None:
    """The resumed run ends with the uninterrupted run's weights and optimizer state, and every
    rank drew the same latents after the resume as in the uninterrupted run."""
    a, b = load(full / "checkpoints" / "last.ckpt"), load(resumed / "checkpoints" / "last.ckpt")
    assert a["ganlab"]["counters"] == b["ganlab"]["counters"]
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    for sa, sb in zip(a["optimizer_states"], b["optimizer_states"]):
        for pa, pb in zip(sa["state"].values(), sb["state"].values()):
            assert torch.equal(pa["exp_avg"], pb["exp_avg"])
    assert len(a["ganlab"]["rng"]) == 2  # one stream per rank in the checkpoint
    for rows_full, rows_resumed in zip(probes(full), probes(resumed)):
        after = [r for r in rows_full if r["iteration"] > start]
        assert [r["z"] for r in rows_resumed] == [r["z"] for r in after]


def test_devices_2_trains_resumes_exactly_and_keeps_ranks_identical(tmp_path, celeba_dir):
    """The mission command, `model=dcgan data=celeba64` (a CelebA fixture in its real layout) with
    trainer.accelerator=cpu trainer.devices=2, and every option that has to hold under DDP: EMA,
    DiffAugment, lazy R1 (double backward), label flips, adaptive D skipping, evaluation on all
    ranks with best.ckpt; then an exact resume from mid-epoch."""
    data = ["data=celeba64", f"data.root={celeba_dir}"]
    options = [
        "data.cache=true",  # built once, by rank 0, while the other rank waits
        f"data.cache_dir={tmp_path / 'cache'}",
        "callbacks.checkpoint.every_n_iterations=2",
        "model.ema_half_life_kimg=0.05",
        "model.d_augment=[{_target_: ganlab.augment.DiffAugment}]",
        "loss.r1_gamma=1",
        "loss.r1_every=2",
        "loss.flip_prob=0.1",
        "model.d_skip_accuracy=0.9",
        "callbacks.evaluation.feature=tiny",
        "callbacks.evaluation.every_n_iterations=4",
        "callbacks.evaluation.n=10",
        "callbacks.evaluation.kid_subset_size=5",
        f"callbacks.evaluation.cache_dir={tmp_path / 'fid'}",
    ]
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    out = run_devices(full, data, options)
    assert out.count("building the image cache") == 1, out[-3000:]
    check_ranks(full, 6, evaluated=(4,))  # 24 images / (2 ranks x 4) = 3 iterations per epoch, 2 epochs
    ck = load(full / "checkpoints" / "last.ckpt")
    assert ck["ganlab"]["counters"]["images_seen"] == 48
    assert (full / "checkpoints" / "best.ckpt").is_file() and len(list((full / "eval").glob("*.json"))) == 1
    run_devices(resumed, data, [*options, f"ckpt_path={full / 'checkpoints' / 'it0000002.ckpt'}"])
    check_resume(full, resumed, start=2)


def test_two_nodes_one_process_each(tmp_path, image_dir):
    """2 nodes x 1 process on loopback, with k=2 D steps (each on its own minibatch) and
    D every other iteration; trains, checkpoints and resumes exactly."""
    options = ["model.d_steps_per_g=2", "data.batch_size=2", "model.d_every=2"]
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    run_nodes(full, image_dir, options)
    check_ranks(full, 10)
    counters = load(full / "checkpoints" / "last.ckpt")["ganlab"]["counters"]
    assert counters["d_updates"] == 10 and counters["g_updates"] == 10  # D phases at 0,2,4 of each epoch
    run_nodes(resumed, image_dir, [*options, f"ckpt_path={full / 'checkpoints' / 'it0000003.ckpt'}"])
    check_resume(full, resumed, start=3)


def test_the_training_doctor_decides_alike_on_every_rank(tmp_path, image_dir):
    """trainer.devices=2 with D overpowering G: each rank's doctor holds the same trackers at every
    iteration (its signals are the logged means, averaged over ranks: no rank's own view), the
    condition is named once, and the gradients still cross once per network and update."""
    run = tmp_path / "run"
    run_devices(run, ["data=image_folder", f"data.root={image_dir}"], [
        "optimizer.d.lr=2e-3", "optimizer.g.lr=2e-6", "trainer.max_epochs=-1", "train.max_iterations=40",
        "callbacks.doctor.warmup_iterations=5", "callbacks.doctor.disable=[mode_collapse]",
        "+callbacks.doctor_view._target_=tests.probes.DoctorView",
        f"+callbacks.doctor_view.dirpath={run}",
    ])  # fmt: skip
    views = [(run / f"doctor_rank{r}.jsonl").read_text().splitlines() for r in (0, 1)]
    assert len(views[0]) == 40 and views[0] == views[1]
    events = [json.loads(line) for line in (run / "doctor.jsonl").read_text().splitlines()]
    assert [(e["condition"], e["event"]) for e in events] == [("d_overpowers", "start")]
    assert json.loads(views[0][-1])["trackers"]["d_overpowers"]["active"]
