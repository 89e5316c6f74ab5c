"""The example outputs the docs show, captured from the command printed above them.

    python docs/capture.py            # trains once (a few minutes on 2 CPU cores), then writes:

``docs/generated/captured/doctor_run.txt``   the command as printed, then lines of its log: the
                                             progress line before the doctor's warning, the
                                             warning, and the progress lines after it
``docs/generated/captured/doctor_jsonl.json`` the first line of that run's ``doctor.jsonl``
``docs/generated/captured/doctor_run.json``  what was run: the command, the date, ganlab's
                                             commit, and the recipe as composed then
                                             (``RECIPE_KEYS``): ``tests/docs`` compares it with
                                             today's composition, so a recipe that changed
                                             since makes the test ask for a new capture.

The run is the doctor's ``d_overpowers`` case of ``experiments/doctor.py`` (D's learning rate x10,
G's / 10) on today's ``experiment=quickstart_cpu``, as a user types it; only where it writes
(``hydra.run.dir``, a temporary folder) is added.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "generated" / "captured"

# The command the doctor page prints (ganlab-train = python -m ganlab.train).
DOCTOR_ARGS = [
    "experiment=quickstart_cpu",
    "optimizer.d.lr=2e-3",
    "optimizer.g.lr=2e-5",
    "train.max_iterations=1000",
    "logger=csv",
]
# The parts of the composed configuration that decide what the run prints (not where it writes).
RECIPE_KEYS = (
    "model",
    "loss",
    "optimizer",
    "train",
    "data.batch_size",
    "data.image_size",
    "callbacks.doctor",
)


def printed(args: list[str]) -> str:
    return "$ ganlab-train " + " ".join(args) + " > log"


def recipe(args: list[str]) -> dict:
    """The composed configuration's ``RECIPE_KEYS`` (unresolved: no paths, no run directory)."""
    sys.path.insert(0, str(ROOT))
    from omegaconf import OmegaConf

    from ganlab import api

    with tempfile.TemporaryDirectory() as tmp:
        cfg = api.compose(args, Path(tmp))
        nodes = {k: OmegaConf.select(cfg, k) for k in RECIPE_KEYS}
        return {
            k: OmegaConf.to_container(v, resolve=False) if OmegaConf.is_config(v) else v
            for k, v in nodes.items()
        }


def commit() -> str:
    r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "ganlab"], cwd=ROOT, capture_output=True, text=True
    )
    return r.stdout.strip() + (" (ganlab/ with uncommitted changes)" if dirty.stdout.strip() else "")


def excerpt(log: str) -> list[str]:
    """The progress line before the doctor's first warning, the warning, and two progress lines after."""
    lines = [ln.rstrip() for ln in log.splitlines() if ln.strip()]
    warn = next(i for i, ln in enumerate(lines) if "doctor: " in ln and ln.lower().startswith("warning"))
    before = [ln for ln in lines[:warn] if ln.startswith("it ")][-1:]
    after = [ln for ln in lines[warn + 1 :] if ln.startswith("it ")][:2]
    return [*before, lines[warn], *after]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, default=None, help="the run's folder (default: a temporary one)")
    args = p.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="ganlab_capture_"))
    run = work / "doctor_run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "GANLAB_DATA_DIR": str(ROOT / "data")}
    composed = recipe(DOCTOR_ARGS)  # as the run composes it (the other settings are where it writes)
    t0 = time.time()
    r = subprocess.run(
        [sys.executable, "-m", "ganlab.train", *DOCTOR_ARGS, f"hydra.run.dir={run}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    (work / "log").write_text(r.stdout)
    if r.returncode != 0:
        raise SystemExit(f"the run failed ({r.returncode}):\n{r.stdout[-3000:]}")
    shown = excerpt(r.stdout)
    events = [ln for ln in (run / "doctor.jsonl").read_text().splitlines() if ln.strip()]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "doctor_run.txt").write_text("\n".join([printed(DOCTOR_ARGS), *shown]) + "\n")
    (OUT / "doctor_jsonl.json").write_text(events[0] + "\n")
    meta = {
        "command": printed(DOCTOR_ARGS),
        "args": DOCTOR_ARGS,
        "date": time.strftime("%Y-%m-%d"),
        "commit": commit(),
        "seconds": round(time.time() - t0, 1),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "recipe": composed,
    }
    (OUT / "doctor_run.json").write_text(json.dumps(meta, indent=1) + "\n")
    print((OUT / "doctor_run.txt").read_text())


if __name__ == "__main__":
    main()
