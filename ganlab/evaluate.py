"""Evaluate a checkpoint, or compare two image sets.

    python -m ganlab.evaluate ckpt=... n=10000              # a generator against its run's data
    python -m ganlab.evaluate real=DIR fake=DIR              # two folders (as pytorch-fid does)
    python -m ganlab.evaluate real=DIR fake=path/last.ckpt   # a generator against any folder

Generates ``n`` images with the checkpoint's generator (eval mode, fixed seed), or reads the
``fake`` folder, compares them with the real statistics (the run's dataset, or the ``real``
folder; cached either way), prints the result as JSON and writes it to ``out`` (default
``<ckpt or fake folder>.eval.json``): FID, KID, IS (or why IS was skipped), the feature network's
identity, time taken and images/s. Folder images are read as the training data is (any depth,
jpg/png/bmp/webp), at the size of the real set's first image.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

import ganlab.run.resolvers  # noqa: F401
from ganlab.run.checks import check_missing
from ganlab.utils.atomic import write_text
from ganlab.utils.errors import UsageError, bad_setting, report_user_errors

if TYPE_CHECKING:
    import torch

# torch is imported by the functions that need it, not at module import (fast --help).

log = logging.getLogger(__name__)


def require_count(cfg: DictConfig, *keys: str) -> None:
    """Each of ``keys`` must be a whole number >= 1 (image counts, batch sizes)."""
    for key in keys:
        v = cfg.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise bad_setting(f"{key} must be a whole number >= 1", key, v, f"{key}=64")


def pick_device(device: str) -> torch.device:
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise UsageError(
            f"unknown device {device!r} (device): use device=auto, device=cpu or device=cuda"
        ) from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(
            "device=cuda but this machine has no CUDA GPU (device): use device=auto or device=cpu"
        )
    return chosen


def folder_data(root: str | Path, batch_size: int, channels: int | None = None, size: int | None = None):
    """An image folder as a data module, at ``size`` (default: the first image's shorter side)."""
    from PIL import Image

    from ganlab.data import ImageFolderDataModule
    from ganlab.data.datasets import IMAGE_EXTENSIONS, require_dir

    root = require_dir(Path(root), "Pass a folder of images.")
    if size is None or channels is None:
        first = next((p for p in sorted(root.rglob("*")) if p.suffix.lower() in IMAGE_EXTENSIONS), None)
        if first is None:
            raise UsageError(f"no images under '{root}'")
        with Image.open(first) as img:
            size = size or min(img.size)
            channels = channels or (1 if img.mode in ("L", "I", "I;16") else 3)
    return ImageFolderDataModule(
        str(root), image_size=size, channels=channels, batch_size=batch_size, num_workers=0
    )


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate ``ckpt=`` (or ``fake=``) against the real statistics; write and return the result."""
    import torch

    from ganlab.metrics import GANMetrics, load_feature_net

    check_missing(cfg)
    require_count(cfg, "n", "batch_size", *(() if cfg.n_real == "auto" else ("n_real",)))
    device = pick_device(cfg.device)
    fake_src, gen, dm = sources(cfg, device)
    features = load_feature_net(cfg.feature, cfg.weights, device=device, key="feature")

    def new_metrics(**settings) -> GANMetrics:
        kw = dict(inception_score=cfg.inception_score, precision_recall=cfg.precision_recall, pr_k=cfg.pr_k)
        return GANMetrics(features, cfg.kid_subsets, cfg.kid_subset_size, **{**kw, **settings})

    metrics = new_metrics()
    # A conditional generator: every class in turn (balanced), or only class=...; the real
    # statistics are then that class's (cached per class), unless real=DIR gives the images.
    only, own_data = cfg.get("class"), not cfg.get("real")
    if only is not None and gen is None:
        raise UsageError(
            f"class={only} picks a class of a conditional generator: pass fake= or ckpt= a checkpoint"
        )
    labels = gen.labels(cfg.n, only) if gen is not None else None
    chosen = gen.class_index(only) if only is not None else None  # (an unconditional gen refuses)
    label = chosen if own_data else None
    t0 = time.perf_counter()
    metrics.load_or_compute_real_for(dm, real_count(cfg, metrics, dm, label), cfg.batch_size, cfg.cache_dir,
                                     label=label)  # fmt: skip
    t_real = time.perf_counter() - t0
    timed = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    timed()
    t0 = time.perf_counter()
    if gen is not None:
        fake_feats, provenance = generated(cfg, gen, metrics, labels, fake_src, chosen)
    else:
        fake_feats, provenance = None, read_folder(cfg, metrics, dm, fake_src, device)
    timed()
    t_fake = time.perf_counter() - t0
    result = metrics.compute()
    if labels is not None:
        result.update(per_class(cfg, gen, features, fake_feats, labels, new_metrics, dm, only, own_data))
    if cfg.get("real"):
        provenance["real"] = str(Path(cfg.real).resolve())
    result.update(
        **provenance,
        device=str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        seconds_real_stats=round(t_real, 3),
        seconds=round(t_fake, 3),  # generate (or read) the fake images + extract their features
        images_per_s=round(metrics.n_fake / t_fake, 1),
    )
    out = Path(cfg.out) if cfg.out else Path(str(Path(fake_src)).rstrip("/") + ".eval.json")
    write_text(out, json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    log.info("wrote %s", out)
    return result


def sampling(cfg: DictConfig, gen):
    """``gen`` set up for sampling as ``cfg`` asks (``truncation``, ``truncation_cutoff``,
    ``truncation_center``, ``standing_stats``, a style-based G's ``noise_mode``; ganlab-evaluate's
    and ganlab-generate's common keys); returns the latent sampler."""
    from ganlab.models.truncation import truncate

    sample = truncate(
        gen, cfg.truncation, cfg.seed, cfg.standing_stats, cutoff=cfg.truncation_cutoff,
        center=cfg.truncation_center,
    )  # fmt: skip
    if getattr(gen.G, "style_based", False):
        gen.options["noise_mode"] = cfg.noise_mode
    return sample


def sources(cfg: DictConfig, device):
    """(what is evaluated: its path, the generator or None for a folder, the real data module)."""
    from ganlab.checkpoint.generator import load_generator

    fake_src = cfg.get("fake") or cfg.get("ckpt")
    if not fake_src:
        raise UsageError(
            "nothing to evaluate: pass ckpt=path/last.ckpt, or real=DIR fake=DIR (or fake=a checkpoint)"
        )
    key = "fake" if cfg.get("fake") else "ckpt"
    gen = None if Path(fake_src).is_dir() else load_generator(fake_src, device, key=key)
    if cfg.get("real"):
        shape = (gen.G.channels, gen.G.image_size) if gen else (None, None)
        return fake_src, gen, folder_data(cfg.real, cfg.batch_size, *shape)
    if gen is None:
        raise UsageError("fake= is a folder: pass the real images with real=DIR")
    if "data" not in gen.config:
        raise UsageError(
            f"{key}={fake_src} is an official network pickle: it names no data set here; pass the real "
            "images to compare with, real=DIR"
        )
    data_cfg = dict(gen.config["data"])
    if cfg.data_root:
        data_cfg["root"] = str(cfg.data_root)
    if cfg.full_data:
        data_cfg["max_images"] = None
    return fake_src, gen, instantiate(data_cfg)


def generated(cfg: DictConfig, gen, metrics, labels, fake_src, chosen: int | None):
    """The generator's ``n`` images' features (and logits) into ``metrics``; (them, provenance)."""
    from ganlab.utils.hashing import file_digest

    sample = sampling(cfg, gen)
    fake_feats = metrics.generated_features(gen, sample, cfg.n, cfg.batch_size, cfg.seed, labels)
    metrics.add_fake_features(*fake_feats)
    provenance = {"ckpt": str(Path(fake_src).resolve()), "ckpt_sha256": file_digest(fake_src),
                  "iteration": gen.iterations, "seed": cfg.seed}  # fmt: skip
    if chosen is not None:
        provenance["class"] = gen.class_names[chosen]
    if cfg.truncation is not None:
        provenance.update(truncation=cfg.truncation, standing_stats=cfg.standing_stats)
        if gen.class_centers is not None:
            provenance["truncation_center"] = "class"
    provenance.update({k: v for k, v in gen.options.items() if v is not None})
    return fake_feats, provenance


def read_folder(cfg: DictConfig, metrics, dm, fake_src, device) -> dict[str, Any]:
    """Up to ``n`` images of the ``fake`` folder into ``metrics``; their provenance."""
    fake_dm = folder_data(fake_src, cfg.batch_size, dm.channels, dm.image_size)
    for batch in fake_dm.real_batches(cfg.batch_size):
        metrics.add_fake(batch[: cfg.n - metrics.n_fake].to(device))
        if metrics.n_fake >= cfg.n:
            break
    if metrics.n_fake < cfg.n:
        log.warning(
            "fake=%s holds %d images, fewer than n=%d: the metrics below are on %d images (FID and KID "
            "depend on the sample count: compare results at the same n)", fake_src, metrics.n_fake, cfg.n,
            metrics.n_fake,
        )  # fmt: skip
    return {"fake": str(Path(fake_src).resolve())}


def per_class(cfg, gen, features, fake_feats, labels, new_metrics, dm, only, own_data) -> dict[str, Any]:
    """A conditional generator's class accuracy and confusion (when the feature network classifies
    the data's classes) and intra-class FID (against the run's own data, every class)."""
    result: dict[str, Any] = {}
    if features.num_logits == len(gen.class_names) and fake_feats[1] is not None:
        # The feature network is a classifier over the data's classes (feature=<TorchScript>, e.g.
        # experiments/fashion_judge.py): the share of images classified as the class asked for.
        result["class_accuracy"] = (fake_feats[1].argmax(1) == labels.cpu()).float().mean().item()
        result.update(confusion(labels.cpu(), fake_feats[1].argmax(1), gen.class_names))
        log.info("%s", confusion_table(result["confusion"], gen.class_names))
    if only is None and own_data and cfg.intra_class:
        result.update(intra_class_fid(new_metrics, dm, gen.class_names, fake_feats[0], labels, cfg))
    return result


def confusion(asked: torch.Tensor, judged: torch.Tensor, names: list[str]) -> dict:  # (n,), (n,) int
    """Where the classes get confused: ``confusion[i][j]`` counts the images asked for class i
    that the classifier (the feature network) calls class j; ``class_accuracy_per_class`` its
    diagonal over its rows (the share of each class's images taken for that class)."""
    import torch

    k = len(names)
    counts = torch.bincount(asked.long() * k + judged.long(), minlength=k * k).view(k, k)
    per_class = {
        name: (counts[i, i] / counts[i].sum()).item() if counts[i].sum() else float("nan")
        for i, name in enumerate(names)
    }
    return {"confusion": counts.tolist(), "class_accuracy_per_class": per_class}


def confusion_table(counts: list[list[int]], names: list[str]) -> str:
    """The confusion matrix as rows of text: asked for (rows), classified as (columns)."""
    width = max(6, *(len(n) for n in names)) + 1
    head = "asked \\ judged".ljust(width + 2) + "".join(n[:width].rjust(width) for n in names)
    rows = [n.ljust(width + 2) + "".join(str(c).rjust(width) for c in row) for n, row in zip(names, counts)]
    title = "confusion matrix (rows: the class asked for; columns: the class the judge sees)"
    return "\n".join([title, head, *rows])


def real_count(cfg: DictConfig, metrics, dm, label: int | None) -> int:
    """``n_real=auto``: the most real images any statistics cached for this data (and class) and
    network hold, else ``max(n, 2000)`` (a quick look at ``n=64`` does not wait for 50,000 real
    images; FID on few images is biased, so compare results at equal counts)."""
    if cfg.n_real != "auto":
        return cfg.n_real
    cached = metrics.cached_real_counts(dm, cfg.cache_dir, label)
    n_real = max(cached) if cached else max(cfg.n, 2000)
    log.info(
        "n_real=auto: %d real images (%s)", n_real, "cached" if cached else "none cached yet; at least n"
    )
    return n_real


def intra_class_fid(
    new_metrics, dm, class_names: list[str], feats, labels, cfg: DictConfig
) -> dict[str, Any]:
    """FID of each class's generated images (the rows of ``feats`` whose label is that class)
    against that class's real images (statistics cached per class), and their mean: the
    intra-class FID of conditional GANs (Miyato & Koyama 2018, section 5)."""
    per_class = {}
    for c, name in enumerate(class_names):
        m = new_metrics(precision_recall=False, inception_score=False)  # FID is what is reported per class
        m.load_or_compute_real_for(dm, real_count(cfg, m, dm, c), cfg.batch_size, cfg.cache_dir, label=c)
        m.add_fake_features(feats[labels == c])
        per_class[name] = m.compute()["fid"]
    return {"intra_fid": per_class, "intra_fid_mean": sum(per_class.values()) / len(per_class)}


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
@report_user_errors
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
