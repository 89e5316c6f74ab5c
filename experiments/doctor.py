"""The training doctor's benchmark: each condition induced on purpose on a CPU, named by the doctor
(at which iteration and kimg), how far ahead of the point where the judge shows the damage, and
the same run with the doctor's own fix, scored by the judge; then the healthy shipped recipes over
their full length, two seeds each, where the doctor must name nothing.

    python experiments/doctor.py [--lanes 2] [--threads 1] [--only d_overpowers,...] [--skip-healthy]
    python experiments/doctor.py --healthy conditional_fashion_mnist   (that recipe's two healthy runs only)

The damage is read from the judge (``experiments/fashion_judge.pt``): every snapshot of a run (one
per 250 iterations) scored with 500 samples against 10k images of the *whole* data set
(``full_data=true``, as Karras et al. 2020 score limited-data runs: a G that copies a small
training set looks good against that set only). It is the first snapshot from which the judge's
cFID stays over 1.5x the healthy quickstart run's at the same iteration, or, for ``d_memorises``
and ``quality_regression``, over 1.1x the run's own best so far. Runs also evaluate FID in the
judge's features while they train (against their training set, every 250 iterations), the series
the doctor's ``quality_regression`` reads. The fix run is the induced run plus the overrides the
doctor printed (typed after the run's own, so they win), less a ``ckpt_path`` resume and
``data.max_images=null`` (more data: the scenario is having few images). ``quality_regression`` is
a late collapse: the healthy quickstart run (seed 0) resumed at its iteration 1000 with D frozen
(D's lr 1e-7), its damage read against its best so far from that checkpoint on; its fix is a
resume too, as the doctor prints it. Final checkpoints are judged with 2,000 samples against the
whole set (cFID, precision/recall). Writes ``experiments/doctor.{json,md}``; the runs go to
``outputs/doctor/``, and a rerun reuses the finished ones (``seconds.json``).
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import JUDGE, ROOT, evaluate, machine, metrics_csv, train

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
FEW = [
    *QUICK,
    "data.max_images=128",
    "callbacks.checkpoint.every_epoch=false",
    "callbacks.samples.every_epoch=false",
]
# condition -> (what induces it, overrides, iterations)
INDUCED = {
    "d_overpowers": ("D's lr x10, G's / 10", [*QUICK, "optimizer.d.lr=2e-3", "optimizer.g.lr=2e-5"], 1500),
    "d_memorises": ("128 training images", FEW, 2000),
    "mode_collapse": (
        "D every 4th iteration, G's lr x5",
        [*QUICK, "model.d_every=4", "optimizer.g.lr=1e-3"],
        1500,
    ),
    "divergence": (
        "both lr 1, least squares",
        [*QUICK, "loss=lsgan", "optimizer.g.lr=1", "optimizer.d.lr=1"],  # 0.2 trains 600 iterations
        1500,  # the quickstart's length: what the fix run gets
    ),
    "augment_leak": (
        "ADA at target 0.3",
        ["experiment=limited_data_ada", "model.d_augment.0.target=0.3"],
        2000,
    ),
    "quality_regression": (
        "D frozen (lr 1e-7) at iteration 1000 of the healthy run, resumed",
        [
            *QUICK,
            f"ckpt_path={OUT / 'healthy_quickstart_cpu_seed0' / 'checkpoints' / 'it0001000.ckpt'}",
            "optimizer.d.lr=1e-7",
        ],  # fmt: skip
        2500,
    ),
}
SEED = {"quality_regression": 0}  # a resume of the healthy seed-0 run keeps its seed
HEALTHY = {"quickstart_cpu": 1500, "conditional_fashion_mnist": 3500, "limited_data_ada": 2000}


def judged(ckpt: Path, n: int, threads: int | None) -> dict:
    """The judge's cFID, precision/recall of ``ckpt``: ``n`` samples against 10k images of the whole set."""
    out = ckpt.with_suffix(f".full{n}.json")
    extra = ("inception_score=false", "full_data=true")
    return evaluate(ckpt, out, str(JUDGE), n, 10_000, *extra, threads=threads)


def judge_curve(run_dir: Path, threads: int | None) -> list[tuple[int, float]]:
    """(iteration, judge cFID against the whole set) of every 250-iteration snapshot."""
    snaps = sorted(run_dir.glob("checkpoints/it*.ckpt"))
    return [(int(p.stem[2:]), judged(p, 500, threads)["fid"]) for p in snaps if int(p.stem[2:]) % 250 == 0]


def events(run_dir: Path) -> list[dict]:
    path = run_dir / "doctor.jsonl"
    return [json.loads(ln) for ln in path.read_text().splitlines()] if path.is_file() else []


def damage_at(curve, reference, condition: str) -> int | None:
    """The first snapshot from which the judge's cFID stays bad (see the module's docstring)."""
    ref = dict(reference)
    bad, best = [], float("inf")
    for it, fid in curve:
        if condition in ("d_memorises", "quality_regression"):
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
    try:
        train(
            run_dir, [*overrides, f"train.max_iterations={iterations}", f"seed={seed}", *EVAL], args.threads
        )
    except RuntimeError as e:  # a run that diverges ends with ganlab's DivergenceError (exit 1)
        if "training diverged" not in str(e):
            raise
        (run_dir / "seconds.json").write_text("{}")  # finished, as far as a rerun is concerned
    return run_dir


def induced(condition: str, args, reference) -> dict:
    how, overrides, iterations = INDUCED[condition]
    seed = SEED.get(condition, 42)
    run_dir = run(condition, overrides, iterations, args, seed=seed)
    ev = [e for e in events(run_dir) if e["condition"] == condition and e["event"] == "start"]
    others = sorted({e["condition"] for e in events(run_dir) if e["event"] == "start"} - {condition})
    curve = judge_curve(run_dir, args.threads)
    if condition == "quality_regression":  # from the checkpoint it resumed: the best the judge saw
        curve = [(it, fid) for it, fid in reference if it <= 1000] + curve
    row = {"condition": condition, "induced_by": how, "overrides": overrides, "iterations": iterations,
           "named": bool(ev), "other_conditions": others, "judge_curve": curve,
           "damage_at": damage_at(curve, reference, condition)}  # fmt: skip
    last = run_dir / "checkpoints" / "last.ckpt"
    row["before"] = judged(last, args.n, args.threads) if condition != "divergence" else None
    if not ev:
        return row
    first = ev[0]
    row.update(named_at=first["iteration"], named_kimg=first["kimg"], since=first["since_iteration"],
               fix=first["fix"], message=first["message"])  # fmt: skip
    row["lead_iterations"] = None if row["damage_at"] is None else row["damage_at"] - first["iteration"]
    # Not a resume (the fix run starts over; quality_regression's fix is one), and not more data:
    # the scenario is having few images.
    resume = condition == "quality_regression"
    fix = [
        f
        for f in first["fix"]
        if not f.startswith(("data.max_images=",) + (() if resume else ("ckpt_path=",)))
    ]
    fixed = run(f"{condition}_fixed", [*overrides, *fix], iterations, args, seed=seed)
    row["after"] = judged(fixed / "checkpoints" / "last.ckpt", args.n, args.threads)
    row["fix_run"] = " ".join(f.replace(str(ROOT) + "/", "") for f in fix)
    row["fixed_conditions"] = sorted({e["condition"] for e in events(fixed) if e["event"] == "start"})
    return row


def healthy(recipe: str, seed: int, args) -> dict:
    run_dir = run(f"healthy_{recipe}_seed{seed}", [f"experiment={recipe}", "trainer.max_epochs=-1"],
                  HEALTHY[recipe], args, seed=seed)  # fmt: skip
    starts = [e for e in events(run_dir) if e["event"] == "start"]
    # how close the run came to mode_collapse's threshold (0.5) once conditions may start
    from omegaconf import OmegaConf

    warmup = OmegaConf.load(run_dir / ".hydra" / "config.yaml").callbacks.doctor.warmup_iterations
    spread = [float(r["doctor/diversity"]) for r in metrics_csv(run_dir)
              if r.get("doctor/diversity") and int(r["step"]) > warmup]  # fmt: skip
    row = {
        "recipe": recipe,
        "seed": seed,
        "iterations": HEALTHY[recipe],
        "conditions": [e["message"] for e in starts],
        "min_diversity_after_warmup": round(min(spread), 3) if spread else None,
    }
    if recipe == "quickstart_cpu" and seed == 0:  # the reference the damage is read against
        row["judge_curve"] = judge_curve(run_dir, args.threads)
    return row


def table(result: dict) -> str:
    lines = [
        "| condition | induced by | named at iteration (kimg) | judge shows it at | lead | fix typed | "
        "cFID before -> after | precision / recall before -> after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["induced"]:
        if not r["named"]:
            shown = r.get("damage_at") or "-"
            lines.append(f"| `{r['condition']}` | {r['induced_by']} | **not named** | {shown} | | | | |")
            continue
        b, a = r.get("before") or {}, r.get("after") or {}

        def pr(x):
            return f"{x['precision']:.2f} / {x['recall']:.2f}" if x else "-"

        before = f"{b['fid']:.1f}" if b else "stopped"
        cfid = f"{before} -> {a['fid']:.1f}" if a else "-"
        lead = "-" if r.get("lead_iterations") is None else f"{r['lead_iterations']:+d} it"
        named = f"{r['named_at']} ({r['named_kimg']:.1f})"
        if r["other_conditions"]:
            named += "; also " + ", ".join(f"`{c}`" for c in r["other_conditions"])
        fixed = r.get("fixed_conditions")
        fix = f"`{r.get('fix_run', '')}`" + (f" (then: {', '.join(fixed)})" if fixed else "")
        lines.append(
            f"| `{r['condition']}` | {r['induced_by']} | {named} | {r.get('damage_at') or '-'} | {lead} | "
            f"{fix} | {cfid} | {pr(b)} -> {pr(a)} |"
        )
    head = "| healthy recipe | seed | iterations | conditions named | lowest diversity after the warm-up |"
    lines += ["", head, "|---|---|---|---|---|"]
    for h in result["healthy"]:
        low = h.get("min_diversity_after_warmup")
        named = len(h["conditions"]) or "none"
        low = "-" if low is None else f"{low:.2f}"
        lines.append(f"| `{h['recipe']}` | {h['seed']} | {h['iterations']} | {named} | {low} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lanes", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--n", type=int, default=2000, help="judged samples per checkpoint")
    p.add_argument("--only", default="", help="comma-separated conditions")
    p.add_argument("--skip-healthy", action="store_true")
    p.add_argument(
        "--healthy", default="", help="only these healthy recipes' runs; the rest of doctor.json kept"
    )
    args = p.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if args.healthy:
        recipes = args.healthy.split(",")
        with ThreadPoolExecutor(args.lanes) as pool:
            rows = list(pool.map(lambda job: healthy(*job, args), [(r, s) for r in recipes for s in (0, 1)]))
        result = json.loads((ROOT / "experiments" / "doctor.json").read_text())
        kept = [h for h in result["healthy"] if h["recipe"] not in recipes]
        result["healthy"] = sorted(kept + rows, key=lambda h: (list(HEALTHY).index(h["recipe"]), h["seed"]))
        result["wall_s"] = round(result["wall_s"] + time.time() - t0, 1)
        write(result)
        return
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
        reference = ref_job.result()["judge_curve"]
        rows = [pool.submit(induced, c, args, reference) for c in only]
        rows = [r.result() for r in rows]
        result = {
            "machine": machine(args.threads, args.lanes),
            "judge": str(JUDGE.relative_to(ROOT)),
            "induced": rows,
            "healthy": [ref_job.result(), *(j.result() for j in jobs)],
            "wall_s": round(time.time() - t0, 1),
        }
    saved = ROOT / "experiments" / "doctor.json"
    if (args.only or args.skip_healthy) and saved.is_file():  # a partial rerun: keep the other rows
        old = json.loads(saved.read_text())
        redone = {r["condition"] for r in rows}
        order = list(INDUCED)
        result["induced"] = sorted([r for r in old["induced"] if r["condition"] not in redone] + rows,
                                   key=lambda r: order.index(r["condition"]))  # fmt: skip
        if args.skip_healthy:
            result["healthy"] = old["healthy"]
        result["wall_s"] = round(old["wall_s"] + result["wall_s"], 1)
    write(result)


def write(result: dict) -> None:
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
