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
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

BATCHES = (128, 1024)
# The goals on an H100 (experiments, not tests): images/s per batch and FID-10k seconds.
GOALS = {
    "b128_img_per_s": 40_000,
    "b128_of_graphed_reference": 0.85,
    "b1024_img_per_s": 70_000,
    "fid10k_s": 5.0,
}


def synthetic_folder(root: Path, n: int, size: int = 64) -> Path:
    """``n`` smooth random RGB PNGs (low-frequency noise upsampled), written once."""
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    if len(list(root.glob("*.png"))) >= n:
        return root
    rng = np.random.default_rng(0)
    for i in range(n):
        small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize((size, size), Image.BICUBIC).save(root / f"{i:05d}.png")
    return root


def ganlab_case(args, batch: int, graphed: bool, data: Path, out: Path, fid: bool) -> dict[str, Any]:
    """``ganlab.bench`` in this process on the composed bench configuration."""
    from ganlab import api
    from ganlab.bench.training import bench

    overrides = [
        "data=image_folder", f"data.root={data}", "data.image_size=64", "data.channels=3",
        "data.cache=true", "data.device_resident=true", f"data.cache_dir={args.work / 'cache'}",
        "data.num_workers=0", f"data.batch_size={batch}", "model.channels_last=true",
        f"model.cuda_graph={str(graphed).lower()}", f"trainer.precision={args.precision}", "logger=csv",
        "trainer.enable_progress_bar=false", "reference=false", f"warmup={args.warmup}",
        f"iters={args.iters[batch]}", *args.model,
    ]  # fmt: skip
    if fid:  # one training-time evaluation after the timed window, as a run does every N iterations
        overrides += [
            "callbacks.evaluation.at_end=true", f"callbacks.evaluation.n={args.fid_n}",
            f"callbacks.evaluation.feature={args.feature}", "callbacks.evaluation.inception_score=false",
            f"callbacks.evaluation.cache_dir={args.work / 'fid_cache'}",
            f"callbacks.evaluation.batch_size={args.fid_batch}",
        ]  # fmt: skip
    cfg = api.compose(overrides, out, config_name="bench")
    result = bench(cfg)
    if fid:
        (evaluation,) = [json.loads(p.read_text()) for p in (out / "eval").glob("it*.json")]
        result["fid_seconds"] = round(evaluation["seconds"], 3)
        result["fid_n"] = args.fid_n
    return result


def ganlab_row(args, batch: int, graphed: bool, data: Path, fid: bool) -> dict[str, Any]:
    """One row of ganlab's path: speed and memory (and the FID's seconds where ``fid``)."""
    tag = f"ganlab_{'graph' if graphed else 'eager'}_b{batch}"
    r = ganlab_case(args, batch, graphed, data, args.work / tag, fid)
    found = {"img_per_s": r["ganlab_img_per_s"], "ms_per_iter": r["ganlab_ms_per_iter"],
             "peak_gpu_mem_gb": r["peak_gpu_mem_gb"]}  # fmt: skip
    return dict(found, fid_seconds=r["fid_seconds"]) if fid else found


SECTIONS = ("dcgan", "stylegan2")
SECTION_ROWS = {"dcgan": "cases", "stylegan2": "stylegan2"}  # where each section's rows live in the report
STYLEGAN2 = {"stylegan2_cifar": 32, "stylegan2_paper256": 256}  # experiment -> its resolution
SG2_MODES = ("eager", "cuda_graph", "compiled")
OFFICIAL_SEC_PER_KIMG = {"128 px": "12.8-13.7", "256 px": "21.6-24.2"}  # one V100, the official code


def synthetic_cifar(root: Path, n: int) -> Path:
    """``cifar-10-batches-py`` (its pickle layout) holding ``n`` random 32 px images, for the
    conditional StyleGAN2 configuration."""
    import pickle

    base = root / "cifar-10-batches-py"
    if (base / "batches.meta").is_file():
        return root
    base.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        images = rng.integers(0, 256, (n // 5, 3 * 32 * 32), dtype=np.uint8)
        entry = {"data": images, "labels": list(rng.integers(0, 10, n // 5)), "batch_label": name}
        with open(base / name, "wb") as f:
            pickle.dump(entry, f)
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, f)
    return root


def stylegan2_case(args, name: str, mode: str, out: Path) -> dict[str, Any]:
    """``ganlab.bench`` of an official StyleGAN2 configuration on one device, its total batch."""
    from ganlab import api
    from ganlab.bench.training import bench

    size = STYLEGAN2[name]
    if size == 32:
        data = [f"data.root={synthetic_cifar(args.work / 'cifar', 2000 if args.dry_run else 10_000)}"]
    else:
        data = [f"data.root={synthetic_folder(args.work / f'images{size}', 256, size)}"]
    overrides = [
        f"experiment={name}", *data, "data.cache=true", "data.device_resident=true", "data.num_workers=0",
        f"data.cache_dir={args.work / 'cache'}", f"data.batch_size={args.sg2_batch}", "trainer.devices=1",
        f"model.compile={str(mode == 'compiled').lower()}",
        f"model.cuda_graph={str(mode == 'cuda_graph').lower()}", f"trainer.precision={args.precision}",
        "logger=csv",
        "trainer.enable_progress_bar=false", "reference=false", f"warmup={args.warmup}",
        f"iters={args.sg2_iters}", *args.sg2_model,
    ]  # fmt: skip
    result = bench(api.compose(overrides, out, config_name="bench"))
    speed = result["ganlab_img_per_s"]
    return {
        "img_per_s": speed,
        "sec_per_kimg": round(1000 / speed, 2),
        "ms_per_iter": result["ganlab_ms_per_iter"],
        "peak_gpu_mem_gb": result["peak_gpu_mem_gb"],
    }


def reference_case(args, batch: int, graphed: bool) -> dict[str, Any]:
    """The plain step with the same networks (``model.generator``/``discriminator`` as composed)."""
    import hydra

    from ganlab import api
    from ganlab.bench.training import ReferenceStep

    cfg = api.compose([*args.model], args.work / "reference", config_name="bench")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    step = ReferenceStep(
        hydra.utils.instantiate(cfg.model.generator), hydra.utils.instantiate(cfg.model.discriminator),
        batch, cfg.model.nz, device, bf16="bf16" in args.precision, channels_last=True, graphed=graphed,
    )  # fmt: skip
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    step.warm_up(args.warmup)
    step.run(args.iters[batch])
    return {
        "img_per_s": round(step.iters * batch / step.seconds, 1),
        "ms_per_iter": round(step.seconds / step.iters * 1e3, 3),
        "peak_gpu_mem_gb": round(torch.cuda.max_memory_allocated(device) / 2**30, 3)
        if device.type == "cuda"
        else None,
    }


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


def attempt(row: dict[str, Any], case, save) -> dict[str, Any]:
    """``row`` updated with what ``case()`` returns, and its wall time (compilation and capture
    included); an exception becomes ``row["failed"]`` (its type and first line, the traceback in
    the log) so that one broken case costs its row, not the lent machine's other figures. ``save``
    writes the report so far: a run stopped at its time limit still leaves every finished row."""
    start = time.perf_counter()
    try:
        row.update(case())
    except Exception as e:  # noqa: BLE001 - reported in the row and the log, never swallowed
        log.exception("%s failed", row)
        row["failed"] = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:300]}"
    finally:
        row["wall_s"] = round(time.perf_counter() - start, 1)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    log.info("%s", row)
    save()
    return row


def dcgan_cases(args, batches, cuda: bool, data: Path, save) -> list[dict[str, Any]]:
    """The plain step and ganlab's path, eager and graphed, at each batch (DCGAN 64 px); each row
    joins ``cases`` (which ``save`` writes) as it finishes."""
    cases: list[dict[str, Any]] = args.report["cases"]
    for batch in batches:
        for graphed in (False, True):
            name = "plain step, CUDA graph" if graphed else "plain step, eager"
            row = {"case": name, "batch": batch}
            cases.append(row)
            if graphed and not cuda:
                row["skipped"] = "needs CUDA"
            else:
                attempt(row, partial(reference_case, args, batch, graphed), save)
        for graphed in (False, True):
            name = "ganlab cuda_graph" if graphed else "ganlab eager"
            row = {"case": name, "batch": batch}
            cases.append(row)
            fid = batch == batches[0] and not graphed
            if graphed and not cuda:
                row["skipped"] = "needs CUDA"
                continue
            attempt(row, partial(ganlab_row, args, batch, graphed, data, fid), save)
    return cases


def stylegan2_cases(args, cuda: bool, save) -> list[dict[str, Any]]:
    """Each official StyleGAN2 configuration eager, CUDA-graphed and compiled (the slowest to start
    last); rows join the report as they finish."""
    stylegan2: list[dict[str, Any]] = args.report["stylegan2"]
    for name, size in STYLEGAN2.items():
        for mode in SG2_MODES:
            row: dict[str, Any] = {"experiment": name, "px": size, "mode": mode}
            stylegan2.append(row)
            if mode == "compiled" and not cuda:
                row["skipped"] = "compiling takes minutes on a CPU; measured on a GPU"
            elif mode == "cuda_graph" and not cuda:
                row["skipped"] = "needs CUDA"
            else:
                attempt(row, partial(stylegan2_case, args, name, mode, args.work / f"{name}_{mode}"), save)
    return stylegan2


def main(argv: list[str] | None = None) -> dict[str, Any]:
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
    for folder in (args.out, args.work):
        folder.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    log.setLevel(logging.INFO)
    args.precision = "bf16-mixed"
    args.warmup, args.iters, args.fid_n, args.fid_batch, args.model = (
        30,
        {128: 300, 1024: 60},
        10_000,
        500,
        [],
    )
    batches = BATCHES
    args.sg2_batch, args.sg2_iters, args.sg2_model = 64, 50, []  # the official total batch
    if args.dry_run:
        args.warmup, args.iters, args.fid_n, args.fid_batch, batches = 2, {4: 3, 8: 2}, 64, 32, (4, 8)
        args.model, args.feature = ["model.generator.ngf=4", "model.discriminator.ndf=4"], "tiny"
        args.sg2_batch, args.sg2_iters = 4, 2
        synthesis = "model.generator.synthesis_kwargs"
        args.sg2_model = [f"{synthesis}.channel_base=256", f"{synthesis}.channel_max=8", "model.nz=16",
                          "model.generator.w_dim=16", "loss.pl_every=2",
                          "model.discriminator.epilogue_kwargs.mbstd_group_size=4"]  # fmt: skip
    cuda = torch.cuda.is_available()
    sections = [args.only] if args.only else list(SECTIONS)
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
    args.report = report

    def save() -> None:
        """The report as it stands (the goals from the rows so far) to ``--out``."""
        report["fid_seconds"] = next((r["fid_seconds"] for r in report["cases"] if "fid_seconds" in r), None)
        report["goals"] = goals(report["cases"], report["fid_seconds"])
        (args.out / "gpu_report.json").write_text(json.dumps(report, indent=2))
        (args.out / "gpu_report.md").write_text(table(report))

    if "dcgan" in sections:
        data = args.data or synthetic_folder(args.work / "images", 256 if args.dry_run else 4096)
        report["cases"].clear()
        dcgan_cases(args, batches, cuda, data, save)
    if "stylegan2" in sections:
        report["stylegan2"].clear()
        stylegan2_cases(args, cuda, save)
    save()
    print(table(report))
    return report


if __name__ == "__main__":
    main()
