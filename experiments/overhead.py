"""The training doctor's own cost: ``python -m ganlab.bench bench=overhead`` with the doctor on and
off (``callbacks.doctor=null``), alternating, ``--pairs`` times, on an otherwise idle machine.

Each bench run times ganlab's iteration interleaved with a plain PyTorch step in the same process
(``time_ratio``: ganlab's time over the plain step's, so the machine's pace cancels); the doctor's
cost is the ratio of the two ``time_ratio``s of each adjacent pair (on / off). Writes
``experiments/overhead.json``, which ``docs/render.py`` renders.

    python experiments/overhead.py [--pairs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from common import ROOT, run

COMMAND = "python -m ganlab.bench bench=overhead [callbacks.doctor=null]"


def cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def bench(doctor: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        off = [] if doctor else ["callbacks.doctor=null"]
        run(["-m", "ganlab.bench", "bench=overhead", *off, "logger=csv", f"hydra.run.dir={tmp}"])
        result = json.loads((Path(tmp) / "bench.json").read_text())
    return {"doctor": doctor, "time_ratio": round(result["time_ratio"], 3),
            "ganlab_ms_per_iter": round(result["ganlab_ms_per_iter"], 3)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=3)
    args = p.parse_args()
    runs = []
    for i in range(args.pairs):  # on first in even pairs, off first in odd ones: no order effect
        order = (True, False) if i % 2 == 0 else (False, True)
        runs += [bench(d) for d in order]
    on = [r["time_ratio"] for r in runs if r["doctor"]]
    off = [r["time_ratio"] for r in runs if not r["doctor"]]
    cost = [round(a / b, 3) for a, b in zip(on, off)]  # pair i: its on / its off
    result = {
        "machine": {"cpu_cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d"), "cpu": cpu()},
        "command": COMMAND,
        "runs": runs,
        "doctor": {"min": min(on), "max": max(on)},
        "no_doctor": {"min": min(off), "max": max(off)},
        "doctor_cost": {"pairs": cost, "median": statistics.median(cost)},
    }
    (ROOT / "experiments" / "overhead.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
