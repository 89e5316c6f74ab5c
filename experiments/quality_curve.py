"""Quality against iterations for a CPU recipe: train once with a checkpoint every ``--every``
iterations, score each checkpoint with ganlab's own evaluation, and plot the curve.

    python experiments/quality_curve.py --recipe conditional_fashion_mnist --iterations 3000 --every 300
    python experiments/quality_curve.py --plot   # every saved curve in one figure

Two feature networks, both through ``ganlab.evaluate``:
- the judge (``experiments/fashion_judge.py``, a Fashion-MNIST classifier ganlab never trains
  against): cFID (Frechet distance in its features) on ``--n`` images against 10k real ones,
  precision/recall in its features, and, for conditional recipes, class accuracy (the share of
  images classified as the class asked for);
- the real InceptionV3 (``fid_helper``, offline) at ``--inception-at`` iterations (or every
  ``--inception-every``-th checkpoint), to check that the cheap cFID ranks checkpoints as FID
  does (Spearman's rho in the JSON).

Writes ``experiments/quality_curve_<name>.json`` (one row per checkpoint, with the seconds from
the command's start to that checkpoint on this machine) and ``experiments/quality_curve.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import JUDGE, ROOT, inception, judge, machine, train

OUT = ROOT / "experiments"


def spearman(a: list[float], b: list[float]) -> float:
    def ranks(x):
        order = sorted(range(len(x)), key=x.__getitem__)
        r = [0] * len(x)
        for i, j in enumerate(order):
            r[j] = i
        return r

    ra, rb = ranks(a), ranks(b)
    n = len(a)
    return 1 - 6 * sum((x - y) ** 2 for x, y in zip(ra, rb)) / (n * (n * n - 1)) if n > 1 else float("nan")


def curve(args) -> None:
    name = args.name or args.recipe
    run_dir = Path(args.work) / name
    overrides = [
        f"experiment={args.recipe}",
        f"train.max_iterations={args.iterations}",
        f"callbacks.checkpoint.every_n_iterations={args.every}",
        "callbacks.report=null",
        *args.overrides,
    ]
    seconds = train(run_dir, overrides, args.threads)  # a rerun scores the saved checkpoints again
    rows = []
    for k, (it, s) in enumerate(sorted(seconds.items())):
        ckpt = run_dir / "checkpoints" / f"it{it:07d}.ckpt"
        judged = judge(ckpt, args.n, threads=args.threads)
        row = {
            "iteration": it,
            "seconds": s,
            "cfid": judged["fid"],
            "precision": judged.get("precision"),
            "recall": judged.get("recall"),
        }
        if "class_accuracy" in judged:
            row["class_accuracy"] = judged["class_accuracy"]
        last = it == max(seconds)
        if it in args.inception_at or (
            args.inception_every and ((k + 1) % args.inception_every == 0 or last)
        ):
            fid = inception(ckpt, args.inception_n, threads=args.threads)
            row.update(fid=fid["fid"], kid=fid["kid_mean"], inception_precision=fid.get("precision"))
        rows.append(row)
        print(json.dumps(row), flush=True)
    both = [r for r in rows if "fid" in r]
    result = {
        "recipe": args.recipe,
        "overrides": overrides,
        "n": args.n,
        "inception_n": args.inception_n,
        "judge": json.loads(JUDGE.with_suffix(".json").read_text()),
        "cfid_vs_fid_spearman": spearman([r["cfid"] for r in both], [r["fid"] for r in both]),
        "machine": machine(args.threads),
        "rows": rows,
    }
    (OUT / f"quality_curve_{name}.json").write_text(json.dumps(result, indent=2))


def plot() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = sorted(OUT.glob("quality_curve_*.json"))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for path in curves:
        c = json.loads(path.read_text())
        name = path.stem.removeprefix("quality_curve_")
        its = [r["iteration"] for r in c["rows"]]
        (line,) = ax1.plot(its, [r["cfid"] for r in c["rows"]], marker="o", label=f"{name}: cFID (judge)")
        both = [r for r in c["rows"] if "fid" in r]
        if both:
            ax1.plot(
                [r["iteration"] for r in both],
                [r["fid"] / 10 for r in both],
                ls="--",
                color=line.get_color(),
                marker="s",
                label=f"{name}: InceptionV3 FID / 10",
            )
        for r in c["rows"][1::2]:
            ax1.annotate(
                f"{r['seconds'] / 60:.1f} min",
                (r["iteration"], r["cfid"]),
                fontsize=7,
                textcoords="offset points",
                xytext=(0, 6),
            )
        if "class_accuracy" in c["rows"][0]:
            ax2.plot(
                its,
                [r["class_accuracy"] for r in c["rows"]],
                marker="o",
                color=line.get_color(),
                label=f"{name}: class accuracy",
            )
        ax2.plot(
            its,
            [r["precision"] for r in c["rows"]],
            ls=":",
            color=line.get_color(),
            label=f"{name}: precision (judge)",
        )
    ax1.set(xlabel="GAN iterations", ylabel="lower is better", yscale="log", title="Fréchet distance")
    ax2.set(xlabel="GAN iterations", ylabel="higher is better", ylim=(0, 1), title="fidelity")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT / "quality_curve.png", dpi=110)
    print(f"wrote {OUT / 'quality_curve.png'}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--recipe", default="conditional_fashion_mnist")
    p.add_argument("--name", default=None, help="default: the recipe")
    p.add_argument("--iterations", type=int, default=3000)
    p.add_argument("--every", type=int, default=300)
    p.add_argument("--n", type=int, default=2000)
    # InceptionV3 reads 2.6-2.9 images/s on 2 CPU cores: on a CPU, a few checkpoints and a few
    # hundred images (biased FID; its ranking of checkpoints is what the check needs).
    p.add_argument("--inception-every", type=int, default=0, help="InceptionV3 FID every k-th checkpoint")
    p.add_argument("--inception-at", type=int, nargs="*", default=[], help="and at these iterations")
    p.add_argument("--inception-n", type=int, default=500, help="images (real and generated) for it")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--work", default="outputs/quality_curve")
    p.add_argument("--plot", action="store_true")
    p.add_argument("overrides", nargs="*", help="more ganlab.train overrides")
    args = p.parse_args()
    if args.plot:
        plot()
    else:
        curve(args)


if __name__ == "__main__":
    main()
