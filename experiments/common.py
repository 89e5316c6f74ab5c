"""What the experiment scripts share: run ganlab's own commands (``ganlab.train``,
``ganlab.evaluate``) as a user would, time them, and read back what they wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JUDGE = ROOT / "experiments" / "fashion_judge.pt"  # python experiments/fashion_judge.py


def run(args: list[str], threads: int | None = None) -> None:
    """``python -m ...`` in a subprocess; its stderr's tail in the error when it fails.
    ``threads``: OMP_NUM_THREADS (1 when several runs share 2 cores: 3-5x faster than 2 each)."""
    env = dict(os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {}))
    r = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed:\n{r.stderr[-3000:]}")


def train(run_dir: Path, overrides: list[str], threads: int | None = None) -> dict[int, float]:
    """``ganlab.train`` into ``run_dir`` (CSV logger, no progress bar); returns the seconds from
    the command's start to each saved ``it*.ckpt`` (start-up included: what a user waits).
    They are kept in ``run_dir/seconds.json``: a rerun finds the run there and does not train again."""
    saved = run_dir / "seconds.json"
    if saved.is_file():
        return {int(k): v for k, v in json.loads(saved.read_text()).items()}
    t0 = time.time()
    run(
        [
            "-m",
            "ganlab.train",
            *overrides,
            "logger=csv",
            "trainer.enable_progress_bar=false",
            f"hydra.run.dir={run_dir}",
        ],
        threads,
    )
    seconds = {
        int(p.stem[2:]): round(p.stat().st_mtime - t0, 1)
        for p in sorted((run_dir / "checkpoints").glob("it*.ckpt"))
    }
    saved.write_text(json.dumps(seconds))
    return seconds


def evaluate(ckpt: Path, out: Path, feature: str, n: int, n_real: int, *extra: str, threads=None) -> dict:
    """``ganlab.evaluate`` of one checkpoint; returns its JSON result (the saved one when ``out``
    is newer than the checkpoint: a rerun scores only what is missing)."""
    if out.is_file() and out.stat().st_mtime > ckpt.stat().st_mtime:
        return json.loads(out.read_text())
    run(
        [
            "-m",
            "ganlab.evaluate",
            f"ckpt={ckpt}",
            f"out={out}",
            f"feature={feature}",
            f"n={n}",
            f"n_real={n_real}",
            "intra_class=false",
            *extra,
        ],
        threads,
    )
    return json.loads(out.read_text())


def metrics_csv(run_dir: Path) -> list[dict[str, str]]:
    """The rows of the run's CSV log (one file per run; the newest when resumed)."""
    import csv

    files = sorted(run_dir.glob("**/metrics.csv"), key=lambda p: p.stat().st_mtime)
    with open(files[-1]) as f:
        return list(csv.DictReader(f))


def short_name(variant: str) -> str:
    """A table row's name without its parenthesis: "ADA, fast (speed 20 kimg)" -> "ADA, fast"."""
    return variant.split(" (")[0]


def slug(variant: str) -> str:
    """The run directory's name for a table row: "ADA, fast (speed 20 kimg)" -> "ADA_fast"."""
    return short_name(variant).replace(",", "").replace(" ", "_")


def machine(threads: int | None, lanes: int = 1) -> str:
    """Where the figures came from, for the JSON beside them."""
    return f"{os.cpu_count()} CPU cores, OMP_NUM_THREADS={threads or 'default'}, {lanes} run(s) at once"


def judge(ckpt: Path, n: int, *extra: str, threads: int | None = None, tag: str = "") -> dict:
    """cFID, precision/recall (and class accuracy, conditional) in the judge's features: ``n``
    generated images against 10k real ones; ``<ckpt>.judge<tag>.json`` (a ``tag`` per ``extra``
    setting, e.g. ".t0.6" for a truncation threshold)."""
    out = ckpt.with_suffix(f".judge{tag}.json")
    return evaluate(ckpt, out, str(JUDGE), n, 10_000, "inception_score=false", *extra, threads=threads)


def inception(ckpt: Path, n: int, *extra: str, threads: int | None = None) -> dict:
    """FID/KID/precision/recall with the real InceptionV3 (offline network), ``n`` images each
    side; ``<ckpt>.inception.json``."""
    out = ckpt.with_suffix(".inception.json")
    return evaluate(ckpt, out, "fid_helper", n, n, "inception_score=false", *extra, threads=threads)
