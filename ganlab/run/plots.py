"""The run report's plots, doctor section and checkpoint timeline (what ``ganlab-report`` and
``callbacks.report.RunReport`` write; the files are listed in ``ganlab.report``)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

log = logging.getLogger(__name__)


# (file, title, y label, [(column, legend)]): one figure per entry, drawn when a column exists.
CURVES = (
    ("losses.png", "Losses", "loss", [("train/loss_d", "D"), ("train/loss_g", "G")]),
    ("d_outputs.png", "D's output", "mean probability",
     [("train/d_real", "D(x), real"), ("train/d_fake", "D(G(z)), generated")]),
    ("d_accuracy.png", "D's accuracy", "accuracy",
     [("train/d_acc_real", "on real"), ("train/d_acc_fake", "on generated")]),
)  # fmt: skip


def read_metrics(path: Path) -> dict[str, list[tuple[int, float]]]:
    """``metrics.csv`` as {column: [(iteration, value), ...]}, empty cells skipped."""
    series: dict[str, list[tuple[int, float]]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            step = row.get("step")
            if not step:
                continue
            for key, value in row.items():
                if key != "step" and value not in (None, ""):
                    series.setdefault(key, []).append((int(float(step)), float(value)))
    return series


def _figure(title: str, ylabel: str):
    from matplotlib.figure import Figure  # the object API: no pyplot, no display backend

    fig = Figure(figsize=(7, 4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_xlabel("GAN iteration")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return fig, ax


BANDED = ("losses.png", "d_accuracy.png")  # the plots the doctor's conditions are shaded on


def plot_curves(
    series: dict[str, list[tuple[int, float]]], out: Path, bands: list | None = None
) -> list[Path]:
    """The training-curve PNGs for the columns present; returns the files written. ``bands``:
    the doctor's episodes (``ganlab.doctor.record.Episode``), shaded from start to end."""
    written = []
    metric_cols = sorted(k for k in series if k.startswith("val/fid") or k.startswith("val/kid"))
    curves = list(CURVES)
    if metric_cols:
        curves.append(("metrics.png", "Sample quality", "FID / KID", [(k, k[4:]) for k in metric_cols]))
    for name, title, ylabel, columns in curves:
        present = [(k, label) for k, label in columns if series.get(k)]
        if not present:
            continue
        fig, ax = _figure(title, ylabel)
        for key, label in present:
            steps, values = zip(*series[key])
            many = len(steps) > 1
            ax.plot(steps, values, label=label, marker=None if many else "o")
        if bands and name in BANDED:
            last = max(step for key, _ in present for step, _ in series[key])
            colours: dict[str, str] = {}
            for ep in bands:
                first = ep.condition not in colours  # one legend entry per condition
                colour = colours.setdefault(ep.condition, f"C{len(colours) + 3}")
                end = ep.end if ep.end is not None else last
                label = f"doctor: {ep.condition}" if first else None
                ax.axvspan(ep.since, end, color=colour, alpha=0.15, label=label)
        if name == "metrics.png" and any(k.startswith("val/kid") for k, _ in present):
            ax.set_yscale("log")  # FID ~10-300 and KID ~0.001-0.3 on one axis
        ax.legend()
        fig.savefig(out / name)
        written.append(out / name)
    return written


def snapshot_checkpoints(ckpt_dir: Path, rows: int) -> list[tuple[int, Path]]:
    """(iteration, path) of the run's snapshots ``it*.ckpt``, at most ``rows`` of them evenly
    spread from first to last; ``last.ckpt`` when there is no snapshot."""
    from ganlab.checkpoint.format import read_state

    found = []
    for path in sorted(ckpt_dir.glob("*.ckpt")):
        if path.name == "best.ckpt" or (path.name == "last.ckpt" and any(ckpt_dir.glob("it*.ckpt"))):
            continue
        found.append((read_state(path, key="checkpoint")[1].iterations, path))
    found.sort()
    if len(found) > rows:
        picks = sorted({round(i * (len(found) - 1) / (rows - 1)) for i in range(rows)})
        found = [found[i] for i in picks]
    return found


def plot_timeline(ckpt_dir: Path, out: Path, columns: int = 8, rows: int = 12) -> Path | None:
    """One row per snapshot: G (G_ema when kept) on the same ``columns`` fixed latents."""
    import torch

    from ganlab.checkpoint.format import read_checkpoint
    from ganlab.checkpoint.generator import load_generator
    from ganlab.utils.images import grid_uint8

    snaps = snapshot_checkpoints(ckpt_dir, rows)
    if not snaps:
        return None
    state = read_checkpoint(snaps[-1][1], key="checkpoint")["state_dict"]
    z, y = state["fixed_z"][:columns], None  # (columns, nz): the noise of the run's sample grids
    if "fixed_y" in state:  # conditional: one column per class, each the first latent of its grid row
        first = [int((state["fixed_y"] == c).nonzero()[0]) for c in range(int(state["fixed_y"].max()) + 1)]
        z, y = state["fixed_z"][first], state["fixed_y"][first]
    images = [load_generator(path)(z, y) for _, path in snaps]  # each (columns, C, H, W) in [-1, 1]
    grid = grid_uint8(torch.cat(images), z.shape[0])  # (3, H', W') uint8
    h = grid.shape[1] / len(snaps)  # pixel height of one row

    from matplotlib.figure import Figure

    width = 8.0
    fig = Figure(figsize=(width, width * grid.shape[1] / grid.shape[2] + 0.6), dpi=150, layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_yticks([h * (i + 0.5) for i in range(len(snaps))], [f"it {it}" for it, _ in snaps])
    ax.set_xticks([])
    ax.set_title("Fixed latents over training")
    fig.savefig(out / "timeline.png")
    return out / "timeline.png"


def write_report(
    run_dir: str | Path, out: str | Path | None = None, columns: int = 8, rows: int = 12
) -> list[Path]:
    """Every plot the run directory has the data for; returns the PNGs written."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(
            f"run directory '{run_dir}' does not exist; pass a ganlab run's output directory"
        )
    out = Path(out) if out else run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    csv_path = run_dir / "csv" / "metrics.csv"
    if not csv_path.is_file():
        csv_path = next(iter(sorted(run_dir.rglob("metrics.csv"))), csv_path)
    if csv_path.is_file():
        from ganlab.doctor.record import episodes, read_events

        written += plot_curves(read_metrics(csv_path), out, episodes(read_events(run_dir)))
    else:
        log.warning("no metrics.csv under %s (logger.csv off?): no training curves", run_dir)
    if (run_dir / "doctor.jsonl").is_file():  # the training doctor's section: its diagnosis as text
        from ganlab.doctor.record import diagnosis
        from ganlab.utils.atomic import write_text

        write_text(out / "doctor.txt", diagnosis(run_dir) + "\n")
        written.append(out / "doctor.txt")
    ckpt_dir = run_dir / "checkpoints"
    timeline = plot_timeline(ckpt_dir, out, columns, rows) if ckpt_dir.is_dir() else None
    if timeline is None:
        log.warning("no checkpoints under %s: no timeline", ckpt_dir)
    else:
        written.append(timeline)
    return written
