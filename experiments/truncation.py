"""The truncation trick on a trained conditional checkpoint, with and without standing statistics.

    python experiments/truncation.py --ckpt <run>/checkpoints/last.ckpt [--n 2000]

For each threshold (none, 2.0, 1.5, 1.0, 0.7, 0.5), ``ganlab.evaluate truncation=<t>`` with
``standing_stats`` false and true scores the samples in the judge's features
(``experiments/fashion_judge.py``): precision and recall (Kynkaanniemi et al. 2019), class
accuracy (the share classified as the class asked for) and cFID; and the samples' mean pixel
(0-255) next to the real images' says whether they kept their brightness. Writes
``experiments/truncation.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from common import JUDGE, ROOT, evaluate

THRESHOLDS = [None, 2.0, 1.5, 1.0, 0.7, 0.5]


def mean_pixel(ckpt: Path, threshold: float | None, standing: bool, n: int = 1000, seed: int = 0) -> float:
    """The samples' mean pixel in 0-255, drawn as ganlab-generate draws them."""
    from ganlab.api import load_generator
    from ganlab.models.truncation import truncate
    from ganlab.utils.images import to_uint8

    gen = load_generator(ckpt)
    sample = truncate(gen, threshold, seed, standing=standing)
    with torch.no_grad():
        images = gen(sample(n, generator=torch.Generator().manual_seed(seed)), gen.labels(n))
    return to_uint8(images).float().mean().item()


def real_mean_pixel(ckpt: Path, n: int = 1000) -> float:
    """The training images' mean pixel (uint8, as the metrics read them)."""
    from hydra.utils import instantiate

    from ganlab.api import load_generator

    dm = instantiate(dict(load_generator(ckpt).config["data"]))
    total, count = 0.0, 0
    for batch in dm.real_batches(200):
        total, count = total + batch.float().sum().item(), count + batch.numel()
        if count >= n * batch[0].numel():
            break
    return total / count


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--ckpt", type=Path, required=True)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--out", type=Path, default=ROOT / "experiments" / "truncation")
    args = p.parse_args()
    work = args.ckpt.parent / "truncation"
    work.mkdir(exist_ok=True)
    rows = []
    for threshold in THRESHOLDS:
        for standing in (False, True) if threshold is not None else (True,):
            tag = f"t{threshold}_{'standing' if standing else 'plain'}"
            extra = [f"truncation={'null' if threshold is None else threshold}", f"standing_stats={standing}"]
            r = evaluate(args.ckpt, work / f"{tag}.json", str(JUDGE), args.n, 10_000, "inception_score=false",
                         *extra)  # fmt: skip
            row = {"truncation": threshold, "standing_stats": standing if threshold is not None else None,
                   "precision": r["precision"], "recall": r["recall"], "class_accuracy": r["class_accuracy"],
                   "cfid": r["fid"], "mean_pixel": mean_pixel(args.ckpt, threshold, standing)}  # fmt: skip
            rows.append(row)
            print(json.dumps(row), flush=True)
    real = real_mean_pixel(args.ckpt)
    args.out.with_suffix(".json").write_text(
        json.dumps({"ckpt": str(args.ckpt), "n": args.n, "real_mean_pixel": real, "rows": rows}, indent=2)
    )
    lines = [f"Real images' mean pixel: {real:.1f}", "",
             "| truncation | standing statistics | precision | recall | class accuracy | cFID | mean pixel |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        t = "none" if r["truncation"] is None else r["truncation"]
        s = "" if r["standing_stats"] is None else ("yes" if r["standing_stats"] else "no")
        lines.append(f"| {t} | {s} | {r['precision']:.3f} | {r['recall']:.3f} | {r['class_accuracy']:.3f} | "
                     f"{r['cfid']:.1f} | {r['mean_pixel']:.1f} |")  # fmt: skip
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
