"""``doctor.jsonl`` read back: the conditions of a finished run as episodes (start to end), and
the diagnosis ``ganlab-report`` prints for one run or for a folder of runs (a sweep)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Episode:
    """One condition from its start to its end (``end`` None: it still held when the run ended)."""

    condition: str
    since: int  # the iteration its evidence began
    since_kimg: float
    end: int | None
    message: str
    fix: list[str] = field(default_factory=list)
    action: str | None = None


def read_events(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / "doctor.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def episodes(events: list[dict]) -> list[Episode]:
    """The events paired per condition, in order of their start."""
    open_: dict[str, Episode] = {}
    done: list[Episode] = []
    for e in events:
        if e["event"] == "start":
            open_[e["condition"]] = Episode(
                e["condition"], e["since_iteration"], e["since_kimg"], None, e["message"],
                list(e.get("fix", [])), e.get("action"),
            )  # fmt: skip
        elif e["condition"] in open_:
            ep = open_.pop(e["condition"])
            ep.end = e["iteration"]
            done.append(ep)
    return sorted(done + list(open_.values()), key=lambda ep: ep.since)


def is_run(path: Path) -> bool:
    return (path / ".hydra").is_dir() or (path / "checkpoints").is_dir() or (path / "doctor.jsonl").is_file()


def diagnosis(run_dir: str | Path) -> str:
    """Text for one run: each episode with its message and fix, or that the doctor found nothing."""
    run_dir = Path(run_dir)
    eps = episodes(read_events(run_dir))
    if not eps:
        found = (run_dir / "doctor.jsonl").is_file() or (run_dir / "csv").is_dir()
        return f"{run_dir}: {'no condition found' if found else 'no doctor record'}"
    lines = [f"{run_dir}: {len(eps)} condition(s)"]
    for ep in eps:
        span = f"iteration {ep.since}-{ep.end}" if ep.end is not None else f"iteration {ep.since} to the end"
        lines.append(f"  {ep.condition} ({span}): {ep.message}")
        if ep.action:
            lines.append(f"    autopilot: {ep.action}")
    return "\n".join(lines)


def sweep_table(root: str | Path) -> str:
    """One row per run under ``root`` (a Hydra multirun folder): the values it swept (as its W&B
    run is named; the overrides the runs do not share when the folder has no ``multirun.yaml``),
    its conditions and first fix."""
    import yaml

    from ganlab.utils.sweep import overrides_by_key, swept_keys

    root = Path(root)
    runs = sorted(
        (p for p in root.iterdir() if p.is_dir() and is_run(p)), key=lambda p: (len(p.name), p.name)
    )
    over = {run: run / ".hydra" / "overrides.yaml" for run in runs}
    values = {run: overrides_by_key(yaml.safe_load(p.read_text()) or []) if p.is_file() else {}
              for run, p in over.items()}  # fmt: skip
    keys = swept_keys(root) or [
        k for k in dict.fromkeys(k for v in values.values() for k in v)
        if len({v.get(k) for v in values.values()}) > 1
    ]  # fmt: skip
    rows = [("run", "swept", "conditions (since iteration)", "first fix")]
    for run in runs:
        swept = " ".join(f"{k}={values[run][k]}" for k in keys if k in values[run])
        eps = episodes(read_events(run))
        conds = ", ".join(
            f"{ep.condition} ({ep.since}{'' if ep.end is None else f'-{ep.end}'})" for ep in eps
        )
        fix = next((" ".join(ep.fix) for ep in eps if ep.fix), "")
        rows.append((run.name, swept, conds or "none", fix))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join("  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3] for r in rows)
