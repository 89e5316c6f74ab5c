"""Candidate settings for the conditional Fashion-MNIST recipe, trained as shipped and judged
with the class confusion matrix: where the tops (pullover, coat, shirt) get confused.

    python experiments/conditional_candidates.py [--only shipped,hierarchical_z] [--seeds 0] [--lanes 2]
    python experiments/conditional_candidates.py --truncation hierarchical_z   (its curve, seed 0)

Each candidate is ``experiment=conditional_fashion_mnist`` plus its overrides, trained to the
recipe's 3,000 iterations (one thread per run, ``--lanes`` runs at once on the 2 cores), its
``last.ckpt`` scored by ``ganlab-evaluate`` in the judge's features (``experiments/
fashion_judge.pt``; 2,000 samples, balanced over the classes, against 10k real images): cFID,
precision/recall, class accuracy, per class and as a confusion matrix. ``--truncation NAME``
scores that candidate's seed-0 checkpoint at thresholds 1.0, 0.8, 0.6 and 0.4 (standing
statistics). Writes ``experiments/conditional_candidates.{json,md}``; runs go to the git-ignored
``outputs/conditional_candidates/`` and a rerun reuses the finished ones.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import JUDGE, ROOT, evaluate, machine, train

OUT = ROOT / "outputs" / "conditional_candidates"
RESULT = ROOT / "experiments" / "conditional_candidates"
CANDIDATES = {
    "shipped": [],
    "hierarchical_z": ["model.generator.hierarchical_z=true"],
}
TRUNCATION = [1.0, 0.8, 0.6, 0.4]
QUIET = ["callbacks.evaluation.every_n_iterations=0", "callbacks.report=null", "trainer.max_epochs=-1"]


def judged(ckpt: Path, threads: int, *extra: str, tag: str = "") -> dict:
    out = ckpt.with_suffix(f".candidates{tag}.json")
    return evaluate(ckpt, out, str(JUDGE), 2000, 10_000, "inception_score=false", *extra, threads=threads)


def one(name: str, seed: int, threads: int) -> dict:
    run_dir = OUT / f"{name}_seed{seed}"
    t0 = time.time()
    overrides = ["experiment=conditional_fashion_mnist", *QUIET, *CANDIDATES[name], f"seed={seed}"]
    seconds = train(run_dir, overrides, threads)
    r = judged(run_dir / "checkpoints" / "last.ckpt", threads)
    keep = ("fid", "precision", "recall", "class_accuracy", "class_accuracy_per_class", "confusion")
    return {"candidate": name, "seed": seed, "overrides": CANDIDATES[name], "train_s": max(seconds.values()),
            "wall_s": round(time.time() - t0, 1), **{k: r[k] for k in keep}}  # fmt: skip


def table(rows: list[dict]) -> str:
    classes = list(rows[0]["class_accuracy_per_class"]) if rows else []
    lines = [
        "| candidate | seed | train s | cFID | precision | recall | class acc. | worst class | "
        + " | ".join(classes)
        + " |",
        "|---" * (8 + len(classes)) + "|",
    ]
    for r in rows:
        per = r["class_accuracy_per_class"]
        worst = min(per, key=per.get)
        cells = [f"`{r['candidate']}`", r["seed"], f"{r['train_s']:.0f}", f"{r['fid']:.1f}",
                 f"{r['precision']:.2f}", f"{r['recall']:.2f}", f"{r['class_accuracy']:.3f}",
                 f"{worst} {per[worst]:.2f}", *(f"{per[c]:.2f}" for c in classes)]  # fmt: skip
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default=",".join(CANDIDATES))
    p.add_argument("--seeds", default="0")
    p.add_argument("--lanes", type=int, default=2)
    p.add_argument("--truncation", default="", help="a candidate whose seed-0 run to score at each threshold")
    args = p.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    path = RESULT.with_suffix(".json")
    saved = json.loads(path.read_text()) if path.is_file() else {}
    result = {"machine": machine(1, args.lanes), "judge": str(JUDGE.relative_to(ROOT)), "rows": [],
              "truncation": saved.get("truncation", {})}  # fmt: skip
    jobs = [(c, int(s)) for c in args.only.split(",") if c for s in args.seeds.split(",")]
    with ThreadPoolExecutor(args.lanes) as pool:
        rows = list(pool.map(lambda job: one(*job, threads=1), jobs))
    done = {(r["candidate"], r["seed"]) for r in rows}
    kept = [r for r in saved.get("rows", []) if (r["candidate"], r["seed"]) not in done]
    result["rows"] = sorted(kept + rows, key=lambda r: (list(CANDIDATES).index(r["candidate"]), r["seed"]))
    if args.truncation:
        ckpt = OUT / f"{args.truncation}_seed0" / "checkpoints" / "last.ckpt"
        curve = []
        for t in TRUNCATION:
            r = judged(ckpt, 2, f"truncation={t}", "standing_stats=true", tag=f".t{t}")
            curve.append(
                {"threshold": t, **{k: r[k] for k in ("fid", "precision", "recall", "class_accuracy")}}
            )
        result["truncation"][args.truncation] = curve
    path.write_text(json.dumps(result, indent=1))
    head = (
        "# Conditional recipe candidates\n\n`python experiments/conditional_candidates.py` "
        f"({result['machine']}); judge `{result['judge']}`, 2,000 samples against 10k real images.\n"
    )
    md = [head, table(result["rows"])]
    for name, curve in result["truncation"].items():
        md += [f"\n## Truncation, `{name}` (seed 0, standing statistics)\n",
               "| threshold | cFID | precision | recall | class acc. |", "|---|---|---|---|---|"]  # fmt: skip
        md += [f"| {c['threshold']} | {c['fid']:.1f} | {c['precision']:.3f} | {c['recall']:.3f} | "
               f"{c['class_accuracy']:.3f} |" for c in curve]  # fmt: skip
    RESULT.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
