"""The GPU benchmark, in one command: ``python -m ganlab.gpu_report --out DIR [--feature FILE]``
(the same as ``python -m ganlab.bench.gpu``).

On one GPU, DCGAN 64 px (ngf = ndf = 64), bf16 autocast, channels_last, images resident on the
device, one D and one G update per iteration:

- the plain PyTorch step (``ganlab.bench.training.ReferenceStep``, ``../shared/reference/``) eager and
  captured in one CUDA graph, at batch 128 and 1024;
- ganlab's training path (``ganlab.bench.training``: the data module, GANModule, callbacks and CSV
  logger of ``ganlab.train``) eager and with ``model.cuda_graph=true``, at batch 128 and 1024;
- images/s, ms per iteration and peak GPU memory of each; the time of one training-time FID-10k
  evaluation (``callbacks.evaluation``: generate 10k images, InceptionV3 features, FID/KID/
  precision/recall; the real statistics are computed before and timed apart);
- StyleGAN2 (``experiment=stylegan2_cifar`` and ``stylegan2_paper256``, the official networks,
  loss and lazy terms) at the official total batch (64) on one GPU, bf16, eager, replayed as CUDA
  graphs (one per plan: the lazy R1 and path-length iterations have their own) and compiled, in
  sec/kimg beside the official code's own table (one V100 with its CUDA plugins: 128 px 12.8-13.7
  sec/kimg, 256 px 21.6-24.2).

Writes ``gpu_report.json`` and ``gpu_report.md`` (the table, with the goals) into ``--out``, after
each case (a run stopped by a time limit keeps its finished rows); ``--work``: where the runs, caches
and synthetic images go (default ``--out``); ``--only dcgan|stylegan2``: one section, the other's rows
kept from ``--out``'s earlier report.
Without ``--data`` the images are a synthetic folder of 4,096 PNGs written there (throughput and
the FID's time do not depend on what the pictures show). ``--feature``: the FID network, e.g.
fid-helper's ``default_1.pt`` (offline); default ``auto``.
``--dry-run``: tiny networks, few iterations, the ``tiny`` feature network, on whatever device is
there (CPU: the graphed cases are reported as skipped); the test suite runs it.
``experiments/gpu_report.sh`` prepares the wheels and the FID network for a GPU machine without
hydra-core, omegaconf and wandb.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import torch

from ganlab.bench.gpu_cases import dcgan_cases, stylegan2_cases, synthetic_folder

BATCHES = (128, 1024)
# The goals on an H100 (experiments, not tests): images/s per batch and FID-10k seconds.
GOALS = {
    "b128_img_per_s": 40_000,
    "b128_of_graphed_reference": 0.85,
    "b1024_img_per_s": 70_000,
    "fid10k_s": 5.0,
}


SECTIONS = ("dcgan", "stylegan2")
SECTION_ROWS = {"dcgan": "cases", "stylegan2": "stylegan2"}  # where each section's rows live in the report
OFFICIAL_SEC_PER_KIMG = {"128 px": "12.8-13.7", "256 px": "21.6-24.2"}  # one V100, the official code


def dates(report: dict[str, Any], section: str) -> str:
    return report.get("dates", {}).get(section, report["date"])


def table(report: dict[str, Any]) -> str:
    rows = report["cases"]
    lines = [
        f"GPU report: {report['device']}, torch {report['torch']}, DCGAN {report['image_size']} px, "
        f"{report['precision']}, channels_last, device-resident data ({dates(report, 'dcgan')})",
        "",
        "| case | batch | images/s | ms/iteration | peak GPU memory GiB |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        if "skipped" in r or "failed" in r:
            why = f"skipped: {r['skipped']}" if "skipped" in r else f"failed: {r['failed']}"
            lines.append(f"| {r['case']} | {r['batch']} | {why} | | |")
            continue
        mem = "" if r["peak_gpu_mem_gb"] is None else f"{r['peak_gpu_mem_gb']:.2f}"
        lines.append(
            f"| {r['case']} | {r['batch']} | {r['img_per_s']:,.0f} | {r['ms_per_iter']:.3f} | {mem} |"
        )
    lines += ["", "| goal (H100) | target | measured | met |", "|---|---|---|---|"]
    for name, (target, measured) in report["goals"].items():
        met = "n/a" if measured is None else ("yes" if measured >= target else "no")
        if name == "fid10k_s" and measured is not None:
            met = "yes" if measured <= target else "no"
        if report["dry_run"]:
            met = "n/a (dry run)"
        lines.append(f"| {name} | {target} | {measured if measured is not None else 'n/a'} | {met} |")
    if report.get("fid_seconds") is not None:
        lines += [
            "",
            f"FID-{report['fid_n']} (training-time evaluation, {report['feature']}): "
            f"{report['fid_seconds']} s (generate, features, FID/KID/precision/recall; real stats apart)",
        ]
    official = ", ".join(f"{px} {s}" for px, s in OFFICIAL_SEC_PER_KIMG.items())
    lines += ["", f"StyleGAN2, one device, total batch {report['sg2_batch']}, {report['precision']}, "
              f"{dates(report, 'stylegan2')} (the "
              f"official code on one V100 with its CUDA plugins, sec/kimg: {official}):", "",
              "| configuration | px | mode | sec/kimg | images/s | ms/iteration | peak GPU memory GiB |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in report.get("stylegan2", []):
        if "skipped" in r or "failed" in r:
            why = f"skipped: {r['skipped']}" if "skipped" in r else f"failed: {r['failed']}"
            lines.append(f"| {r['experiment']} | {r['px']} | {r['mode']} | {why} | | | |")
            continue
        mem = "" if r["peak_gpu_mem_gb"] is None else f"{r['peak_gpu_mem_gb']:.2f}"
        lines.append(f"| {r['experiment']} | {r['px']} | {r['mode']} | {r['sec_per_kimg']} | "
                     f"{r['img_per_s']:,.0f} | {r['ms_per_iter']:.1f} | {mem} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def goals(cases: list[dict[str, Any]], fid_seconds: float | None) -> dict[str, tuple[float, float | None]]:
    def speed(case: str, batch: int) -> float | None:
        found = [r.get("img_per_s") for r in cases if r["case"] == case and r["batch"] == batch]
        return found[0] if found else None

    b128, ref128 = speed("ganlab cuda_graph", 128), speed("plain step, CUDA graph", 128)
    return {
        "b128_img_per_s": (GOALS["b128_img_per_s"], b128),
        "b128_of_graphed_reference": (
            GOALS["b128_of_graphed_reference"],
            round(b128 / ref128, 3) if b128 and ref128 else None,
        ),
        "b1024_img_per_s": (
            GOALS["b1024_img_per_s"],
            max(filter(None, [speed("ganlab cuda_graph", 1024), speed("ganlab eager", 1024)]), default=None),
        ),
        "fid10k_s": (GOALS["fid10k_s"], fid_seconds),
    }


def parse_args(argv: list[str] | None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    p = argparse.ArgumentParser(prog="python -m ganlab.gpu_report", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("outputs/gpu_report"))
    p.add_argument(
        "--work", type=Path, default=None,
        help="the working files (synthetic images, caches, runs; default --out), apart from the report",
    )  # fmt: skip
    p.add_argument("--data", type=Path, default=None, help="an image folder (default: synthetic PNGs)")
    p.add_argument("--feature", default="auto", help="FID network: auto | fid_helper | a TorchScript file")
    p.add_argument("--dry-run", action="store_true", help="tiny and quick: checks the command, not the GPU")
    p.add_argument(
        "--only", choices=SECTIONS, default=None,
        help="run one section; the other's rows (and date) are kept from --out's gpu_report.json",
    )  # fmt: skip
    args = p.parse_args(argv)
    args.out = args.out.resolve()
    args.work = (args.work or args.out).resolve()
    args.precision = "bf16-mixed"
    args.warmup, args.iters, args.fid_n, args.fid_batch = 30, {128: 300, 1024: 60}, 10_000, 500
    args.model: list[str] = []
    args.batches = BATCHES
    args.sg2_batch, args.sg2_iters, args.sg2_model = 64, 50, []  # the official total batch
    if args.dry_run:
        args.warmup, args.iters, args.fid_n, args.fid_batch = 2, {4: 3, 8: 2}, 64, 32
        args.batches = (4, 8)
        args.model, args.feature = ["model.generator.ngf=4", "model.discriminator.ndf=4"], "tiny"
        args.sg2_batch, args.sg2_iters = 4, 2
        synthesis = "model.generator.synthesis_kwargs"
        args.sg2_model = [f"{synthesis}.channel_base=256", f"{synthesis}.channel_max=8", "model.nz=16",
                          "model.generator.w_dim=16", "loss.pl_every=2",
                          "model.discriminator.epilogue_kwargs.mbstd_group_size=4"]  # fmt: skip
    return p, args


def new_report(p: argparse.ArgumentParser, args, sections: list[str], cuda: bool) -> dict[str, Any]:
    """The report's header, and with ``--only`` the other section's rows and date from ``--out``."""
    today = time.strftime("%Y-%m-%d")
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "torch": torch.__version__,
        "date": today,
        "dates": dict.fromkeys(sections, today),  # the day each section was measured
        "image_size": 64,
        "precision": args.precision,
        "dry_run": args.dry_run,
        "feature": args.feature,
        "fid_n": args.fid_n,
        "fid_seconds": None,
        "cases": [],
        "goals": {},
        "sg2_batch": args.sg2_batch,
        "stylegan2": [],
    }
    earlier = args.out / "gpu_report.json"
    if args.only and earlier.is_file():  # the section not run now: as an earlier run measured it
        kept = json.loads(earlier.read_text())
        if kept["device"] != report["device"] or kept["dry_run"] != args.dry_run:
            p.error(
                f"{earlier} is from {kept['device']} (dry run: {kept['dry_run']}); --only keeps rows "
                "from the same kind of run: remove it or choose another --out"
            )
        for other in SECTIONS:
            if other != args.only:
                report[SECTION_ROWS[other]] = kept[SECTION_ROWS[other]]
                report["dates"][other] = kept.get("dates", {}).get(other, kept["date"])
    return report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p, args = parse_args(argv)
    for folder in (args.out, args.work):
        folder.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    logging.getLogger("ganlab.bench").setLevel(logging.INFO)  # each row as it finishes (gpu_cases)
    cuda = torch.cuda.is_available()
    sections = [args.only] if args.only else list(SECTIONS)
    report = args.report = new_report(p, args, sections, cuda)

    def save() -> None:
        """The report as it stands (the goals from the rows so far) to ``--out``."""
        report["fid_seconds"] = next((r["fid_seconds"] for r in report["cases"] if "fid_seconds" in r), None)
        report["goals"] = goals(report["cases"], report["fid_seconds"])
        (args.out / "gpu_report.json").write_text(json.dumps(report, indent=2))
        (args.out / "gpu_report.md").write_text(table(report))

    if "dcgan" in sections:
        data = args.data or synthetic_folder(args.work / "images", 256 if args.dry_run else 4096)
        report["cases"].clear()
        dcgan_cases(args, args.batches, cuda, data, save)
    if "stylegan2" in sections:
        report["stylegan2"].clear()
        stylegan2_cases(args, cuda, save)
    save()
    print(table(report))
    return report


if __name__ == "__main__":
    main()
