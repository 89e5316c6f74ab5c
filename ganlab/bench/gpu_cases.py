"""The cases of the GPU report (``python -m ganlab.gpu_report``, ``ganlab.bench.gpu``): each one
composes the bench configuration, runs it and returns its row's figures; ``attempt`` runs one so that
a failure costs its row, and ``dcgan_cases`` / ``stylegan2_cases`` add the rows to the report as they
finish."""

from __future__ import annotations

import json
import logging
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)


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


def speed(result: dict[str, Any]) -> dict[str, Any]:
    """A row's figures from ``ganlab.bench``'s result: images/s, ms per iteration, peak memory."""
    return {"img_per_s": result["ganlab_img_per_s"], "ms_per_iter": result["ganlab_ms_per_iter"],
            "peak_gpu_mem_gb": result["peak_gpu_mem_gb"]}  # fmt: skip


def ganlab_case(args, batch: int, graphed: bool, data: Path, fid: bool) -> dict[str, Any]:
    """``ganlab.bench`` in this process on the composed bench configuration: one row of ganlab's
    path (and the FID's seconds where ``fid``)."""
    from ganlab import api
    from ganlab.bench.training import bench

    out = args.work / f"ganlab_{'graph' if graphed else 'eager'}_b{batch}"
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
    row = speed(bench(api.compose(overrides, out, config_name="bench")))
    if fid:
        (evaluation,) = [json.loads(p.read_text()) for p in (out / "eval").glob("it*.json")]
        row["fid_seconds"] = round(evaluation["seconds"], 3)
    return row


STYLEGAN2 = {"stylegan2_cifar": 32, "stylegan2_paper256": 256}  # experiment -> its resolution
SG2_MODES = ("eager", "cuda_graph", "compiled")


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
    row = speed(bench(api.compose(overrides, out, config_name="bench")))
    return dict(row, sec_per_kimg=round(1000 / row["img_per_s"], 2))


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
            attempt(row, partial(ganlab_case, args, batch, graphed, data, fid), save)
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
