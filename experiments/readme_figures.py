"""The README's run-time figures, each from a command and kept as JSON beside this file:

    python experiments/readme_figures.py quickstart   # `make train` on a CPU: time, img/s, judge
    python experiments/readme_figures.py overhead     # bench=overhead's time_ratio, doctor on and off
    python experiments/readme_figures.py throughput   # the bench's small CPU mode, files vs cached

Each writes ``experiments/<name>.json`` with the machine it ran on. Times depend on the machine
(machines of the same kind here differ about 2x): compare figures from one run of one command.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import judge

ROOT = Path(__file__).resolve().parents[1]


def machine() -> dict:
    return {"cpu_cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d"),
            "cpu": next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                         if ln.startswith("model name")), "unknown")}  # fmt: skip


def ganlab(module: str, args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                       env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})  # fmt: skip
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-3000:])
    return r


def quickstart(work: Path) -> dict:
    """What `make train` runs on a CPU (experiment=quickstart_cpu, shipped loggers and workers),
    timed from the command to its end; training time and img/s from its last progress line; the
    final checkpoint judged (2,000 samples against 10k real images)."""
    run = work / "quickstart"
    t0 = time.time()
    r = ganlab("ganlab.train", ["experiment=quickstart_cpu", f"hydra.run.dir={run}"], ROOT,
               {"GANLAB_DATA_DIR": str(ROOT / "data")})  # fmt: skip
    total = time.time() - t0
    last = [ln for ln in r.stdout.splitlines() if re.match(r"it (\d+)/\1 ", ln)][-1]  # "it 1400/1400 ..."
    h, m, s = (int(x) for x in re.search(r"time (\d+):(\d+):(\d+)", last).groups())
    judged = judge(run / "checkpoints" / "last.ckpt", 2000)
    rate = int(re.search(r"(\d+) img/s", last).group(1))
    return {"command": "make train (python -m ganlab.train experiment=quickstart_cpu)",
            "seconds_total": round(total, 1), "seconds_training": h * 3600 + m * 60 + s, "img_per_s": rate,
            "progress_line": last, "cfid": judged["fid"], "precision": judged["precision"],
            "recall": judged["recall"]}  # fmt: skip


def overhead(work: Path, repeats: int = 3) -> dict:
    """``ganlab-bench bench=overhead`` (time_ratio: ganlab over the plain step, interleaved in one
    process), alternating the shipped callbacks with and without the training doctor."""
    out: dict = {"command": "python -m ganlab.bench bench=overhead [callbacks.doctor=null]", "runs": []}
    for i in range(repeats):
        for doctor in (True, False):
            d = work / f"overhead_{i}_{'doctor' if doctor else 'nodoctor'}"
            off = [] if doctor else ["callbacks.doctor=null"]
            ganlab("ganlab.bench", ["bench=overhead", f"hydra.run.dir={d}", *off], ROOT,
                   {"GANLAB_DATA_DIR": str(ROOT / "data")})  # fmt: skip
            b = json.loads((d / "bench.json").read_text())
            out["runs"].append({"doctor": doctor, "time_ratio": b["time_ratio"],
                                "ganlab_ms_per_iter": b["ganlab_ms_per_iter"]})  # fmt: skip
    for doctor in (True, False):
        ratios = [r["time_ratio"] for r in out["runs"] if r["doctor"] == doctor]
        out["doctor" if doctor else "no_doctor"] = {"min": min(ratios), "max": max(ratios)}
    return out


def throughput(work: Path) -> dict:
    """The bench's small CPU mode: DCGAN 64 px, batch 32, 5 timed iterations, image files vs the
    device-resident cache, each beside the plain PyTorch step in the same process."""
    command = "python -m ganlab.bench trainer=cpu data.batch_size=32 warmup=2 iters=5 logger=csv"
    out: dict = {"command": command + " [data.cache=true data.device_resident=true]"}
    for name, extra in (("files", []), ("cached", ["data.cache=true", "data.device_resident=true"])):
        d = work / f"throughput_{name}"
        args = [
            "trainer=cpu",
            "data.batch_size=32",
            "warmup=2",
            "iters=5",
            "logger=csv",
            f"hydra.run.dir={d}",
        ]
        ganlab("ganlab.bench", [*args, *extra], ROOT, {"GANLAB_DATA_DIR": str(ROOT / "data")})
        b = json.loads((d / "bench.json").read_text())
        out[name] = {k: b[k] for k in ("ganlab_img_per_s", "reference_img_per_s", "ganlab_ms_per_iter",
                                       "reference_ms_per_iter", "time_ratio") if k in b}  # fmt: skip
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["quickstart", "overhead", "throughput"])
    p.add_argument("--work", type=Path, default=None, help="where the runs go (default: a temporary folder)")
    args = p.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="ganlab_figures_"))
    result = {"machine": machine(), **globals()[args.what](work)}
    path = ROOT / "experiments" / f"{args.what}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
