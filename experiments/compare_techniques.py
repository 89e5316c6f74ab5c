"""Baseline DCGAN vs each stabilisation technique, same budget, FID with the real InceptionV3.

    python experiments/compare_techniques.py [--iterations 300] [--n-fake 500] [--out experiments/...]

Each variant trains DCGAN-32 on the embedded Fashion-MNIST for the same number of GAN
iterations (same images seen), then ``ganlab.evaluate`` scores the final generator (G_ema when
EMA is on) against the first ``--n-real`` training images (statistics cached once). Writes a
Markdown table and the raw JSON. On a GPU raise --iterations and --n-fake (10k for FID proper).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

BASE = [
    "data=fashion_mnist",
    "data.batch_size=64",
    "model.generator.ngf=32",
    "model.discriminator.ndf=32",
    "logger=csv",
    "trainer.enable_progress_bar=false",
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


def run(args: list[str]) -> None:
    r = subprocess.run([sys.executable, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed:\n{r.stderr[-3000:]}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--iterations", type=int, default=300)
    p.add_argument("--n-fake", type=int, default=500)
    p.add_argument("--n-real", type=int, default=1000)
    p.add_argument("--feature", default="auto")
    p.add_argument("--work", type=Path, default=Path("outputs/compare_techniques"))
    p.add_argument("--out", type=Path, default=Path("experiments/technique_comparison"))
    p.add_argument("--combo", nargs="*", default=[], help="variant names to combine into a last run")
    p.add_argument("--append", action="store_true", help="run only the --combo and add it to the saved table")
    args = p.parse_args()
    variants = {} if args.append else dict(VARIANTS)
    if args.combo:
        variants["combination: " + " + ".join(args.combo)] = combine([VARIANTS[name] for name in args.combo])
    rows = json.loads(args.out.with_suffix(".json").read_text()) if args.append else []
    for name, overrides in variants.items():
        run_dir = args.work / (
            "combination" if name.startswith("combination") else name.split(" (")[0].replace(" ", "_")
        )
        t0 = time.perf_counter()
        # Every variant makes one D and one G update per iteration: 2 optimizer steps each.
        run(
            [
                "-m",
                "ganlab.train",
                *BASE,
                *overrides,
                f"trainer.max_steps={2 * args.iterations}",
                f"callbacks.checkpoint.every_n_iterations={args.iterations}",
                f"hydra.run.dir={run_dir}",
            ]
        )
        train_s = time.perf_counter() - t0
        ckpt = run_dir / "checkpoints" / f"it{args.iterations:07d}.ckpt"
        out = run_dir / "eval.json"
        run(
            [
                "-m",
                "ganlab.evaluate",
                f"ckpt={ckpt}",
                f"n={args.n_fake}",
                f"n_real={args.n_real}",
                f"feature={args.feature}",
                f"out={out}",
                "kid_subset_size=100",
            ]
        )
        res = json.loads(out.read_text())
        rows.append(
            {
                "variant": name,
                "overrides": overrides,
                "fid": res["fid"],
                "kid": res["kid_mean"],
                "train_s": round(train_s, 1),
                "feature_net": res["feature_net"],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=2))
    base = rows[0]["fid"]
    lines = ["| variant | FID | vs baseline | KID x 1e3 | train s |", "|---|---|---|---|---|"]
    for r in rows:
        delta = r["fid"] - base
        lines.append(
            f"| {r['variant']} | {r['fid']:.1f} | {delta:+.1f} | {r['kid'] * 1e3:.1f} | {r['train_s']} |"
        )
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
