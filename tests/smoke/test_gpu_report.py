"""The GPU report command's CPU dry run, in the conditions of the lent GPU machine (no wandb)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# As the GPU machine: wandb is not installed there, so nothing on this path may import it.
NO_WANDB = (
    "import sys, runpy; sys.modules['wandb'] = None; "
    "runpy.run_module('ganlab.gpu_report', run_name='__main__', alter_sys=True)"
)


def test_gpu_report_dry_run_writes_the_json_and_table(tmp_path):
    out = tmp_path / "report"
    r = subprocess.run(
        [sys.executable, "-c", NO_WANDB, "--dry-run", "--out", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads((out / "gpu_report.json").read_text())
    cases = {(c["case"], c["batch"]): c for c in report["cases"]}
    names = {"plain step, eager", "plain step, CUDA graph", "ganlab eager", "ganlab cuda_graph"}
    assert {name for name, _ in cases} == names and len(cases) == 8
    import torch

    for (name, _), c in cases.items():
        if ("CUDA graph" in name or "cuda_graph" in name) and not torch.cuda.is_available():
            assert c["skipped"] == "needs CUDA"  # the CPU dry run says why it skipped the graphs
        else:
            assert c["img_per_s"] > 0 and c["ms_per_iter"] > 0
    # The FID of a training-time evaluation ran after the first eager ganlab case, and was timed.
    assert report["fid_seconds"] > 0 and report["dry_run"] and report["goals"]["fid10k_s"][0] == 5.0
    table = (out / "gpu_report.md").read_text()
    assert table in r.stdout and "| ganlab eager | 4 |" in table and "n/a (dry run)" in table
    assert (out / "ganlab_eager_b4" / "bench.json").is_file()
    # StyleGAN2's official configurations beside DCGAN: sec/kimg, eager here (compiled on a GPU)
    sg2 = {(r["experiment"], r["compiled"]): r for r in report["stylegan2"]}
    assert set(sg2) == {(e, c) for e in ("stylegan2_cifar", "stylegan2_paper256") for c in (False, True)}
    for (_, compiled), r in sg2.items():
        if compiled and not torch.cuda.is_available():
            assert "on a GPU" in r["skipped"]
        else:
            assert (
                r["sec_per_kimg"] == pytest.approx(1000 / r["img_per_s"], rel=0.01) and r["ms_per_iter"] > 0
            )
    assert "| stylegan2_paper256 | 256 | False |" in table and "21.6-24.2" in table
