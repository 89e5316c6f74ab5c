"""The training doctor's benchmark: each condition induced on purpose on a CPU, named by the
doctor (at which iteration and kimg), how far ahead of the point where FID in the judge's
features shows the damage, and the same run with the doctor's own fix, scored by the judge;
then the healthy shipped recipes over their full length, two seeds each, where the doctor must
name nothing.

    python experiments/doctor.py [--lanes 2] [--threads 1] [--only d_overpowers,...] [--skip-healthy]

Every run evaluates FID in the judge's features (``experiments/fashion_judge.pt``; 500 generated
against 5,000 real images) every 250 iterations, so the damage is read from the run's own
curve: the first evaluation where FID is over 1.5x the healthy quickstart run's at the same
iteration (or, for ``quality_regression``, 1.1x the run's best so far), and stays so. The fix
run is the induced run plus the overrides the doctor printed (a ``ckpt_path`` resume left
out, except for ``quality_regression``, whose fix is its ``best.ckpt``). Final checkpoints are
judged with 2,000 samples against 10k real images (cFID, precision/recall). Writes
``experiments/doctor.{json,md}``; the runs go to ``outputs/doctor/``, and a rerun reuses the
finished ones (``seconds.json``).
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import JUDGE, ROOT, judge, machine, train

OUT = ROOT / "outputs" / "doctor"  # the runs (git-ignored); the results go to experiments/doctor.*
EVAL = [
    f"callbacks.evaluation.feature={JUDGE}",
    "callbacks.evaluation.n=500",
    "callbacks.evaluation.n_real=5000",
    "callbacks.evaluation.every_n_iterations=250",
    "callbacks.evaluation.inception_score=false",
    "callbacks.evaluation.batch_size=250",
    "callbacks.report=null",
]
QUICK = ["experiment=quickstart_cpu", "trainer.max_epochs=-1"]
# condition -> (what induces it, overrides, iterations)
INDUCED = {
    "d_overpowers": ("D's lr x10, G's / 10", [*QUICK, "optimizer.d.lr=2e-3", "optimizer.g.lr=2e-5"], 1500),
    "d_memorises": ("128 training images", [*QUICK, "data.max_images=128"], 2000),
    "mode_collapse": (
        "D every 4th iteration, G's lr x5",
        [*QUICK, "model.d_every=4", "optimizer.g.lr=1e-3"],
        1500,
    ),
    "divergence": (
        "both lr 0.5, least squares",
        [*QUICK, "loss=lsgan", "optimizer.g.lr=0.5", "optimizer.d.lr=0.5"],
        600,
    ),
    "augment_leak": (
        "ADA at target 0.3",
        ["experiment=limited_data_ada", "model.d_augment.0.target=0.3"],
        2000,
    ),
    "quality_regression": ("128 training images (as d_memorises)", [*QUICK, "data.max_images=128"], 2000),
}
HEALTHY = {"quickstart_cpu": 1500, "conditional_fashion_mnist": 3000, "limited_data_ada": 2000}


def fid_curve(run_dir: Path) -> list[tuple[int, float]]:
    return sorted(
        (int(p.stem[2:]), json.loads(p.read_text())["fid"]) for p in (run_dir / "eval").glob("it*.json")
    )


def events(run_dir: Path) -> list[dict]:
    path = run_dir / "doctor.jsonl"
    return [json.loads(ln) for ln in path.read_text().splitlines()] if path.is_file() else []


def damage_at(curve, reference, condition: str) -> int | None:
    """The first evaluation from which FID stays bad (see the module's docstring)."""
    ref = dict(reference)
    bad = []
    best = float("inf")
    for it, fid in curve:
        if condition == "quality_regression":
            bad.append(fid > 1.1 * best)
            best = min(best, fid)
        else:
            bad.append(it in ref and fid > 1.5 * ref[it])
    for i, (it, _) in enumerate(curve):
        if bad[i] and all(bad[i:]):
            return it
    return None


def run(name: str, overrides: list[str], iterations: int, args, seed: int = 42) -> Path:
    run_dir = OUT / name
    t0 = time.time()
    train(run_dir, [*overrides, f"train.max_iterations={iterations}", f"seed={seed}", *EVAL], args.threads)
    if not (run_dir / "wall_s.json").is_file():
        (run_dir / "wall_s.json").write_text(json.dumps(round(time.time() - t0, 1)))
    return run_dir


def final_ckpt(run_dir: Path) -> Path:
    return run_dir / "checkpoints" / "last.ckpt"


def induced(condition: str, args, reference) -> dict:
    how, overrides, iterations = INDUCED[condition]
    run_dir = run(condition, overrides, iterations, args)
    ev = [e for e in events(run_dir) if e["condition"] == condition and e["event"] == "start"]
    others = sorted({e["condition"] for e in events(run_dir) if e["event"] == "start"} - {condition})
    row = {"condition": condition, "induced_by": how, "overrides": overrides, "iterations": iterations,
           "named": bool(ev), "other_conditions": others, "fid_curve": fid_curve(run_dir)}  # fmt: skip
    if not ev:
        return row
    first = ev[0]
    row.update(named_at=first["iteration"], named_kimg=first["kimg"], since=first["since_iteration"],
               fix=first["fix"], message=first["message"])  # fmt: skip
    damage = damage_at(row["fid_curve"], reference, condition)
    row["damage_at"] = damage
    row["lead_iterations"] = None if damage is None else damage - first["iteration"]
    if condition == "divergence":  # the run stops: the fix is judged against nothing to judge
        row["before"] = None
    else:
        row["before"] = judge(final_ckpt(run_dir), args.n, threads=args.threads)
    if condition == "quality_regression":
        best = run_dir / "checkpoints" / "best.ckpt"
        row["after"] = judge(best, args.n, threads=args.threads) if best.is_file() else None
        row["fix_run"] = "best.ckpt of the same run"
    else:
        fix = [f for f in first["fix"] if not f.startswith("ckpt_path=")]
        fixed = run(f"{condition}_fixed", [*overrides, *fix], iterations, args)
        row["after"] = judge(final_ckpt(fixed), args.n, threads=args.threads)
        row["fix_run"] = " ".join(fix)
        row["fixed_conditions"] = sorted({e["condition"] for e in events(fixed) if e["event"] == "start"})
    return row


def healthy(recipe: str, seed: int, args) -> dict:
    run_dir = run(f"healthy_{recipe}_seed{seed}", [f"experiment={recipe}", "trainer.max_epochs=-1"],
                  HEALTHY[recipe], args, seed=seed)  # fmt: skip
    starts = [e for e in events(run_dir) if e["event"] == "start"]
    return {"recipe": recipe, "seed": seed, "iterations": HEALTHY[recipe],
            "conditions": [e["message"] for e in starts], "fid_curve": fid_curve(run_dir)}  # fmt: skip


def table(result: dict) -> str:
    lines = [
        "| condition | induced by | named at iteration (kimg) | FID shows it at | lead | fix typed | "
        "cFID before -> after | precision / recall before -> after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["induced"]:
        if not r["named"]:
            lines.append(f"| `{r['condition']}` | {r['induced_by']} | **not named** | | | | | |")
            continue
        b, a = r.get("before") or {}, r.get("after") or {}

        def pr(x):
            return f"{x['precision']:.2f} / {x['recall']:.2f}" if x else "-"

        cfid = f"{b['fid']:.1f} -> {a['fid']:.1f}" if b and a else "-"
        lead = "-" if r.get("lead_iterations") is None else f"{r['lead_iterations']:+d} it"
        lines.append(
            f"| `{r['condition']}` | {r['induced_by']} | {r['named_at']} ({r['named_kimg']:.1f}) | "
            f"{r.get('damage_at') or '-'} | {lead} | `{r.get('fix_run', '')}` | {cfid} | {pr(b)} -> {pr(a)} |"
        )
    lines += ["", "| healthy recipe | seed | iterations | conditions named |", "|---|---|---|---|"]
    for h in result["healthy"]:
        lines.append(
            f"| `{h['recipe']}` | {h['seed']} | {h['iterations']} | {len(h['conditions']) or 'none'} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lanes", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--n", type=int, default=2000, help="judged samples per checkpoint")
    p.add_argument("--only", default="", help="comma-separated conditions")
    p.add_argument("--skip-healthy", action="store_true")
    args = p.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    only = [c for c in args.only.split(",") if c] or list(INDUCED)
    with ThreadPoolExecutor(args.lanes) as pool:
        # the healthy quickstart run first: the reference curve the damage is read against
        ref_job = pool.submit(healthy, "quickstart_cpu", 0, args)
        jobs = (
            []
            if args.skip_healthy
            else [
                pool.submit(healthy, r, s, args)
                for r in HEALTHY
                for s in (0, 1)
                if (r, s) != ("quickstart_cpu", 0)
            ]
        )
        reference = ref_job.result()["fid_curve"]
        rows = [pool.submit(induced, c, args, reference) for c in only]
        result = {
            "machine": machine(args.threads, args.lanes),
            "judge": str(JUDGE.relative_to(ROOT)),
            "induced": [r.result() for r in rows],
            "healthy": [ref_job.result(), *(j.result() for j in jobs)],
            "wall_s": round(time.time() - t0, 1),
        }
    (ROOT / "experiments" / "doctor.json").write_text(json.dumps(result, indent=1))
    (ROOT / "experiments" / "doctor.md").write_text(
        "# The training doctor on induced failures and healthy recipes\n\n"
        f"`python experiments/doctor.py` ({result['machine']}); raw numbers in `doctor.json`.\n\n"
        + table(result)
        + "\n"
    )
    print(table(result))


if __name__ == "__main__":
    main()
