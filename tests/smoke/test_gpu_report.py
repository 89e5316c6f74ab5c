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
        assert "failed" not in c, c
        if ("CUDA graph" in name or "cuda_graph" in name) and not torch.cuda.is_available():
            assert c["skipped"] == "needs CUDA"  # the CPU dry run says why it skipped the graphs
        else:
            assert c["img_per_s"] > 0 and c["ms_per_iter"] > 0
    # The FID of a training-time evaluation ran after the first eager ganlab case, and was timed.
    assert report["fid_seconds"] > 0 and report["dry_run"] and report["goals"]["fid10k_s"][0] == 5.0
    table = (out / "gpu_report.md").read_text()
    assert table in r.stdout and "| ganlab eager | 4 |" in table and "n/a (dry run)" in table
    assert (out / "ganlab_eager_b4" / "bench.json").is_file()
    # StyleGAN2's official configurations beside DCGAN: sec/kimg, eager here (graphed, compiled on a GPU)
    sg2 = {(r["experiment"], r["mode"]): r for r in report["stylegan2"]}
    modes = ("eager", "cuda_graph", "compiled")
    assert set(sg2) == {(e, m) for e in ("stylegan2_cifar", "stylegan2_paper256") for m in modes}
    for (_, mode), r in sg2.items():
        assert "failed" not in r, r
        if mode != "eager" and not torch.cuda.is_available():
            assert "on a GPU" in r["skipped"] or r["skipped"] == "needs CUDA"
        else:
            assert (
                r["sec_per_kimg"] == pytest.approx(1000 / r["img_per_s"], rel=0.01) and r["ms_per_iter"] > 0
            )
    assert "| stylegan2_paper256 | 256 | eager |" in table and "21.6-24.2" in table
    # --only stylegan2 (a second lease, without the FID network): the StyleGAN2 rows anew, the DCGAN
    # rows and their date kept from the report in --out; the runs go to --work, not beside the report
    work = tmp_path / "work"
    r = subprocess.run(
        [sys.executable, "-c", NO_WANDB, "--dry-run", "--out", str(out), "--only", "stylegan2",
         "--work", str(work)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    again = json.loads((out / "gpu_report.json").read_text())
    assert again["cases"] == report["cases"] and set(again["dates"]) == {"dcgan", "stylegan2"}
    assert len(again["stylegan2"]) == len(report["stylegan2"]) and (work / "stylegan2_cifar_eager").is_dir()


def test_a_failing_case_costs_its_row_and_the_report_so_far_is_saved(tmp_path):
    """On a lent GPU one broken case must not cost the other figures: ``attempt`` records the
    error in the row, and ``save`` has written every row before it."""
    from ganlab.bench.gpu_cases import attempt

    saved = []

    def broken():
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing\nmore")

    row = attempt({"case": "ganlab cuda_graph", "batch": 128}, broken, lambda: saved.append(1))
    assert row["failed"] == "RuntimeError: CUDA error: operation not permitted when stream is capturing"
    assert row["wall_s"] >= 0 and saved == [1]
    ok = attempt({"case": "ganlab eager"}, lambda: {"img_per_s": 1.0}, lambda: saved.append(2))
    assert ok["img_per_s"] == 1.0 and "failed" not in ok and saved == [1, 2]
