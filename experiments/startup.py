"""Start-up and memory, ganlab beside the plain PyTorch script (``experiments/plain_dcgan.py``) on
the same data and networks, each in a fresh process, alternating, medians of ``--repeats``:

- time from the command to the first training iteration: ``ganlab-train experiment=quickstart_cpu``
  (shipped loggers: CSV and W&B offline) against the plain script at the same settings;
- peak RSS (the largest process of the run) of a 64 px run: the default ``data=emoji64`` (DCGAN 64,
  batch 128) against the plain script on the same PNGs;
- ``ganlab-train --help`` and ``ganlab-train --cfg job``.

    python experiments/startup.py [--repeats 3] [--out experiments/startup.json]

Each ganlab run gets ``+callbacks.first_iteration`` (``stamp`` below), a callback that writes the
wall clock at the first ``on_train_batch_start``; the plain script writes its own (``--stamp``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def first_iteration_callback():
    """The Lightning callback class is built where Lightning is already imported (ganlab's run)."""
    import lightning as L

    class Stamp(L.Callback):
        def __init__(self, path: str) -> None:
            self.path, self.done = Path(path), False

        def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
            if not self.done:
                self.path.write_text(repr(time.time()))
                self.done = True

    return Stamp


def stamp(path: str):
    """``_target_`` of ``+callbacks.first_iteration``."""
    return first_iteration_callback()(path)


def run(cmd: list[str], env: dict, stamp_file: Path | None = None) -> tuple[float | None, float, float]:
    """(seconds to the first iteration, seconds in all, peak RSS of the largest process in MiB)."""
    if stamp_file is not None and stamp_file.exists():
        stamp_file.unlink()
    t0 = time.time()
    p = subprocess.Popen(cmd, env=env, cwd=env["RUN_CWD"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    total = time.time() - t0
    if status != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {p.stderr.read().decode()[-2000:]}")
    first = float(stamp_file.read_text()) - t0 if stamp_file is not None else None
    return first, total, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=20, help="of the 64 px memory runs")
    ap.add_argument("--out", default=str(ROOT / "experiments" / "startup.json"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ganlab_startup_"))
    data = Path(os.environ.get("GANLAB_DATA_DIR", ROOT / "data"))
    env = {**os.environ, "RUN_CWD": str(work), "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline",
           "GANLAB_DATA_DIR": str(data), "PYTHONWARNINGS": "ignore"}  # fmt: skip
    ganlab = [sys.executable, "-m", "ganlab.train"]
    plain = [sys.executable, str(ROOT / "experiments" / "plain_dcgan.py")]
    st = work / "first_iteration"
    cases = {
        "first_iteration_quickstart": (
            [*ganlab, "experiment=quickstart_cpu", "train.max_iterations=1", "callbacks.report=null",
             "+callbacks.first_iteration._target_=experiments.startup.stamp",
             f"+callbacks.first_iteration.path={st}"],
            [*plain, "--data", str(data / "fashion-mnist"), "--iterations", "1", "--stamp", str(st)],
        ),
        "peak_rss_64px": (
            [*ganlab, f"train.max_iterations={args.iterations}", "callbacks.report=null", "trainer=cpu"],
            [*plain, "--data", str(data / "emoji-google-64"), "--image-size", "64", "--channels", "3",
             "--width", "64", "--batch-size", "128", "--iterations", str(args.iterations)],
        ),
    }  # fmt: skip
    results: dict = {}
    for name, (ours, theirs) in cases.items():
        rows = {"ganlab": [], "plain": []}
        for i in range(args.repeats):
            for who, cmd in (("ganlab", ours), ("plain", theirs)):
                extra = [f"hydra.run.dir={work / f'{name}_{i}'}"] if who == "ganlab" else []
                rows[who].append(run(cmd + extra, env, st if name.startswith("first") else None))
        key = 0 if name.startswith("first") else 2
        med = {who: statistics.median(r[key] for r in rs) for who, rs in rows.items()}
        results[name] = {"ganlab": round(med["ganlab"], 3), "plain": round(med["plain"], 3),
                         "ratio": round(med["ganlab"] / med["plain"], 3),
                         "unit": "s" if key == 0 else "MiB", "runs": rows}  # fmt: skip
        print(name, {k: v for k, v in results[name].items() if k != "runs"}, flush=True)
    for name, cmd in (("help", ["--help"]), ("cfg_job", ["--cfg", "job"])):
        times = []
        for _ in range(args.repeats):
            t0 = time.time()
            subprocess.run([*ganlab, *cmd], env=env, cwd=work, capture_output=True, check=True)
            times.append(time.time() - t0)
        results[name] = {"seconds_median": round(statistics.median(times), 3), "seconds": times}
        print(name, results[name]["seconds_median"], flush=True)
    results["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
