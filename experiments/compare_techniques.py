"""Baseline DCGAN vs each stabilisation technique, same budget, two seeds, past the knee.

    python experiments/compare_techniques.py [--iterations 2000] [--seeds 0 1] [--inception-n 1000]

Each variant trains DCGAN-32 (ngf = ndf = 32, batch 64) on the embedded Fashion-MNIST for the same
number of GAN iterations (2,000 by default: where experiments/quality_curve.png levels off), once
per seed, then ``ganlab.evaluate`` scores the final generator (G_ema when EMA is on) with the
judge (``experiments/fashion_judge.py``: cFID, precision, recall on ``--n-fake`` images against
10k training images) and, with ``--inception-n``, InceptionV3's FID. The table gives
the mean over seeds and ± half their range. Runs go ``--lanes`` at a time, one thread each.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import JUDGE, inception, judge, machine, slug, train

BASE = [
    "data=fashion_mnist",
    "data.batch_size=64",
    "model.generator.ngf=32",
    "model.discriminator.ndf=32",
    "callbacks.report=null",
    "callbacks.samples.every_n_iterations=0",
    "callbacks.evaluation.every_n_iterations=0",
]
AUG = "{_target_: ganlab.augment.DiffAugment, policy: 'translation,cutout'}"
VARIANTS = {
    "baseline (BCE)": [],
    "EMA (half-life 2k img)": ["model.ema_half_life_kimg=2"],
    "spectral norm in D": ["model.discriminator.spectral_norm=true", "model.discriminator.norm=none"],
    "R1 (gamma 1, every 16)": ["loss.r1_gamma=1"],
    "DiffAugment (translation, cutout)": [f"model.d_augment=[{AUG}]"],
    "instance noise (0.1, annealed)": [
        "model.d_augment=[{_target_: ganlab.augment.InstanceNoise, sigma: 0.1, anneal_kimg: 20}]"
    ],
    "self-attention (16 px)": ["model.generator.attention_res=16", "model.discriminator.attention_res=8"],
    "hinge loss": ["loss=hinge"],
    "least-squares loss": ["loss=lsgan"],
}


def combine(override_lists: list[list[str]]) -> list[str]:
    """Concatenate overrides; the ``model.d_augment=[...]`` lists merge into one (in order)."""
    plain, augments = [], []
    for overrides in override_lists:
        for o in overrides:
            if o.startswith("model.d_augment=["):
                augments.append(o[len("model.d_augment=[") : -1])
            else:
                plain.append(o)
    return plain + ([f"model.d_augment=[{', '.join(augments)}]"] if augments else [])


def one(name: str, overrides: list[str], seed: int, args) -> dict:
    name_dir = "combination" if name.startswith("combination") else slug(name)
    run_dir = args.work / f"{name_dir}_seed{seed}"
    # Every variant makes one D and one G update per iteration.
    seconds = train(
        run_dir,
        [
            *BASE,
            *overrides,
            f"seed={seed}",
            f"train.max_iterations={args.iterations}",
            f"callbacks.checkpoint.every_n_iterations={args.iterations}",
        ],
        args.threads,
    )
    ckpt = run_dir / "checkpoints" / f"it{args.iterations:07d}.ckpt"
    judged = judge(ckpt, args.n_fake, threads=args.threads)
    row = {
        "variant": name,
        "seed": seed,
        "overrides": overrides,
        "cfid": judged["fid"],
        "precision": judged["precision"],
        "recall": judged["recall"],
        "train_s": seconds[args.iterations],
    }
    if args.inception_n:
        fid = inception(ckpt, args.inception_n, threads=args.threads)
        row.update(fid=fid["fid"], kid=fid["kid_mean"])
    print(json.dumps(row), flush=True)
    return row


def mean_spread(values: list[float]) -> str:
    """mean +- half the range (two seeds: the distance of each from the mean)."""
    m = sum(values) / len(values)
    return f"{m:.1f} ± {(max(values) - min(values)) / 2:.1f}"


def table(rows: list[dict]) -> str:
    names = list(dict.fromkeys(r["variant"] for r in rows))
    by = {name: [r for r in rows if r["variant"] == name] for name in names}
    base = sum(r["cfid"] for r in by[names[0]]) / len(by[names[0]])
    inception = all("fid" in r for r in rows)
    head = "| variant | cFID (judge) | vs baseline | precision | recall |" + (
        " InceptionV3 FID |" if inception else ""
    )
    lines = [head + " train s |", "|---" * (head.count("|") - 1 + 1) + "|"]
    for name, rs in by.items():
        cfid = [r["cfid"] for r in rs]
        cells = [
            name,
            mean_spread(cfid),
            f"{sum(cfid) / len(cfid) - base:+.1f}",
            f"{sum(r['precision'] for r in rs) / len(rs):.2f}",
            f"{sum(r['recall'] for r in rs) / len(rs):.2f}",
        ]
        if inception:
            cells.append(mean_spread([r["fid"] for r in rs]))
        cells.append(f"{sum(r['train_s'] for r in rs) / len(rs):.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--iterations", type=int, default=2000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--n-fake", type=int, default=2000)
    p.add_argument("--inception-n", type=int, default=0, help="also InceptionV3 FID on this many images")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--lanes", type=int, default=2, help="runs at once")
    p.add_argument("--work", type=Path, default=Path("outputs/compare_techniques"))
    p.add_argument("--out", type=Path, default=Path("experiments/technique_comparison"))
    p.add_argument("--combo", nargs="*", default=[], help="variant names to combine into a last run")
    p.add_argument("--append", action="store_true", help="run only the --combo and add it to the saved table")
    args = p.parse_args()
    variants = {} if args.append else dict(VARIANTS)
    if args.combo:
        variants["combination: " + " + ".join(args.combo)] = combine([VARIANTS[name] for name in args.combo])
    saved = json.loads(args.out.with_suffix(".json").read_text()) if args.append else {}
    jobs = [(name, overrides, seed) for name, overrides in variants.items() for seed in args.seeds]
    with ThreadPoolExecutor(args.lanes) as pool:
        rows = saved.get("rows", []) + list(pool.map(lambda job: one(*job, args), jobs))
    meta = {
        "iterations": args.iterations,
        "seeds": args.seeds,
        "n_fake": args.n_fake,
        "n_real": 10_000,
        "inception_n": args.inception_n,
        "judge": json.loads(JUDGE.with_suffix(".json").read_text()),
        "machine": machine(args.threads, args.lanes),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({**meta, "rows": rows}, indent=2))
    args.out.with_suffix(".md").write_text(table(rows))
    print(table(rows))


if __name__ == "__main__":
    main()
