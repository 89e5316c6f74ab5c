"""Bench: ganlab.bench runs the real training path on CPU, alone and under DDP (gloo)."""

import json
import subprocess
import sys

from tests.conftest import TINY

# the bench keeps its own callback settings (no file writes in the timed window)
SMALL = [o for o in TINY if not o.startswith(("trainer.max_epochs", "callbacks."))] + ["warmup=2", "iters=3"]


def run_bench(args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "ganlab.bench", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_bench_cpu(tmp_path, image_dir):
    r = run_bench(
        [*SMALL, "data=image_folder", f"data.root={image_dir}", f"hydra.run.dir={tmp_path}"], tmp_path
    )
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads((tmp_path / "bench.json").read_text())
    assert json.loads(r.stdout.strip().splitlines()[-1]) == result
    assert result["device"] == "cpu" and result["iters"] == 3 and result["batch_per_device"] == 8
    assert result["time_ratio"] == round(result["ganlab_ms_per_iter"] / result["reference_ms_per_iter"], 3)
    assert result["ganlab_img_per_s"] > 0 and result["reference_img_per_s"] > 0
    assert result["ratio_per_device"] == round(result["ganlab_img_per_s"] / result["reference_img_per_s"], 3)
    # It ran the real path (CSV metrics logged), with the callbacks' file writes off in the window.
    assert (tmp_path / "csv" / "metrics.csv").is_file()
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "samples").exists()


def test_bench_ddp_two_cpu_processes(tmp_path, image_dir):
    r = run_bench(
        [
            *SMALL,
            "trainer=ddp_cpu",
            "trainer.devices=2",
            "data=image_folder",
            f"data.root={image_dir}",
            f"hydra.run.dir={tmp_path}",
            "reference=false",
            "callbacks.checkpoint.every_n_iterations=0",
        ],
        tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads((tmp_path / "bench.json").read_text())
    assert (
        result["world_size"] == 2 and result["ganlab_img_per_s"] > 0 and "reference_img_per_s" not in result
    )
    # One all-reduce of D's gradients per D update and one of G's per G update, nothing more.
    comm = result["allreduce"]
    for net in ("G", "D"):
        c = comm[net]
        assert c["updates_per_iter"] == 1 and c["reductions_per_iter"] == 1, c
        assert c["bytes_per_iter"] == c["expected_bytes_per_iter"] > 0, c
    assert comm["total_bytes_per_iter"] == comm["G"]["bytes_per_iter"] + comm["D"]["bytes_per_iter"]
    assert "allreduce" in r.stdout
