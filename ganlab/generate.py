"""Sample from a checkpoint: ``python -m ganlab.generate ckpt=... n=64 out=dir``.

``out`` holds the samples and nothing else (``000000.png`` ..., or ``seed0000.png`` ... with
``seeds=``), so that the folder can be evaluated as it is (``ganlab-evaluate fake=out``, or any
FID tool); the previews go beside it: ``<out>.grid.png`` and, with ``interpolate=K``,
``<out>.interpolation.png``: rows of K images along the great circle between pairs of latents
(slerp; White 2016, "Sampling Generative Networks").

Latents: ``n`` images from one generator seeded ``seed`` (``ganlab.latent_index``: the row of
that batch), or ``seeds=0-35`` (stylegan2-ada's convention: a list ``1,5,7`` or ranges ``0-35``):
one image per seed, each from its own generator seeded with it, so an image is the same whatever
else is generated with it. Each PNG carries its provenance as PNG text chunks (read them with
PIL's ``Image.open(p).text``): ``ganlab.ckpt_sha256``, ``ganlab.config_sha256`` (the run's
resolved config), ``ganlab.seed``, ``ganlab.latent_index``, ``ganlab.iteration``.

Conditional generators: ``class=cat`` (a name or an index) draws that class only; without it
the classes take turns (one grid column per class). ``truncation=0.7``: the truncation trick
(``ganlab.models.truncation`` in the PNGs), with BatchNorm's standing statistics recomputed over
truncated latents (BigGAN's remedy for dim samples; ``standing_stats=false`` turns it off).
``select=top_d keep=0.1``: generate n / keep candidates and keep the n that the checkpoint's D
scores most real, best first, a simple form of discriminator rejection sampling (Azadi et al.,
"Discriminator Rejection Sampling", ICLR 2019); each PNG then carries ``ganlab.d_score``, D's
logit.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from omegaconf import DictConfig

import ganlab.run.resolvers  # noqa: F401
from ganlab.evaluate import pick_device, require_count
from ganlab.run.checks import check_missing
from ganlab.utils.errors import UsageError, bad_setting, report_user_errors

if TYPE_CHECKING:
    from torch import Tensor

# torch is imported by the functions that need it, not at module import (fast --help).

log = logging.getLogger(__name__)


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between rows of a and b (n, d) at fractions t (k,) -> (n, k, d)."""
    import torch

    an, bn = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    omega = torch.acos((an * bn).sum(1).clamp(-1 + 1e-7, 1 - 1e-7))[:, None, None]  # (n, 1, 1)
    t = t[None, :, None]
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a[:, None] + (torch.sin(t * omega) / so) * b[:, None]


def d_scores(D, images: Tensor, labels: Tensor | None, batch_size: int) -> Tensor:
    """D's adversarial logits (N,) for images (N, C, H, W) in [-1, 1]: higher = more real to D."""
    import torch

    from ganlab.losses.base import call_d

    device = next(D.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, images.shape[0], batch_size):
            y = labels[i : i + batch_size].to(device) if labels is not None else None
            logits, _ = call_d(D, images[i : i + batch_size].to(device), y)
            out.append(logits.float().cpu())
    return torch.cat(out)


def parse_seeds(spec) -> list[int]:
    """``0-35``, ``1,5,7``, ``0-3,10`` or a list of ints -> the seeds, in order."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        return [spec]
    parts = str(spec).split(",") if isinstance(spec, str) else list(spec)  # a list, or Hydra's ListConfig
    seeds: list[int] = []
    for part in parts:
        text = str(part).strip()
        low, dash, high = text.partition("-")
        if not (low.isdigit() and (not dash or high.isdigit())):
            raise bad_setting("seeds must be whole numbers >= 0 or ranges a-b", "seeds", spec, "seeds=0-35")
        seeds += list(range(int(low), int(high) + 1)) if dash else [int(low)]
    if not seeds:
        raise bad_setting("seeds names no seed", "seeds", spec, "seeds=0-35")
    return seeds


def preview_path(out: Path, name: str) -> Path:
    """``<out>.<name>.png`` beside the samples folder (``samples`` -> ``samples.grid.png``)."""
    out = out.resolve()
    return out.with_name(f"{out.name}.{name}.png")


def check_generate_settings(cfg: DictConfig) -> None:
    check_missing(cfg)
    require_count(cfg, "n", "batch_size")
    if isinstance(cfg.interpolate, bool) or not isinstance(cfg.interpolate, int) or cfg.interpolate < 0:
        raise bad_setting("the interpolation steps must be a whole number >= 0 (0: none)", "interpolate",
                          cfg.interpolate, "interpolate=8")  # fmt: skip
    if cfg.truncation is not None and not (isinstance(cfg.truncation, (int, float)) and cfg.truncation > 0):
        raise bad_setting("truncation must be a positive threshold, or null", "truncation", cfg.truncation,
                          "truncation=0.7")  # fmt: skip
    if cfg.select not in (None, "top_d"):
        raise bad_setting("select must be null or top_d", "select", cfg.select, "select=top_d")
    if cfg.select and not 0 < cfg.keep <= 1:
        raise bad_setting(
            "keep (the share of candidates kept) must be in (0, 1]", "keep", cfg.keep, "keep=0.1"
        )
    if cfg.select and cfg.get("seeds") is not None:
        raise UsageError("select=top_d draws n / keep candidates from seed=, not one image per seed (seeds): "
                         "leave seeds= out, or select= out")  # fmt: skip


def generate(cfg: DictConfig) -> Path:
    import torch
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    from ganlab.checkpoint.generator import load_discriminator, load_generator
    from ganlab.models.truncation import truncate
    from ganlab.run.directory import check_writable
    from ganlab.utils.hashing import config_hash, file_digest
    from ganlab.utils.images import save_grid, to_uint8

    check_generate_settings(cfg)
    seeds = parse_seeds(cfg.seeds) if cfg.get("seeds") is not None else None
    n = len(seeds) if seeds else cfg.n
    device = pick_device(cfg.device)
    out = Path(cfg.out)
    check_writable({"out": out})
    gen = load_generator(cfg.ckpt, device)
    provenance = {
        "ganlab.ckpt": str(Path(cfg.ckpt).resolve()),
        "ganlab.ckpt_sha256": file_digest(cfg.ckpt),
        "ganlab.config_sha256": config_hash(gen.config),
        "ganlab.iteration": str(gen.iterations),
        "ganlab.seed": str(cfg.seed),
    }
    if cfg.truncation is not None:
        provenance["ganlab.truncation"] = str(cfg.truncation)
    # With select=top_d, n / keep candidates, of which D's favourite n are kept.
    m = math.ceil(n / cfg.keep) if cfg.select else n
    sample = truncate(gen, cfg.truncation, cfg.seed, standing=cfg.standing_stats)
    if seeds:  # one generator per seed: an image depends on its seed only
        z = torch.cat([sample(1, generator=torch.Generator().manual_seed(s))
                       for s in seeds])  # fmt: skip
    else:
        z = sample(m, generator=torch.Generator().manual_seed(cfg.seed))  # (m, nz)
    labels = gen.labels(m, cfg.get("class"))  # (m,): the class asked for, or every class in turn
    images = torch.cat([
        gen(z[i : i + cfg.batch_size], None if labels is None else labels[i : i + cfg.batch_size]).cpu()
        for i in range(0, m, cfg.batch_size)
    ])  # fmt: skip
    index = torch.arange(m)
    scores = None
    if cfg.select:
        scores = d_scores(load_discriminator(cfg.ckpt, device), images, labels, cfg.batch_size)
        index = scores.argsort(descending=True)[:n]  # D's most "real" first
        images, scores = images[index], scores[index]
        labels = labels[index] if labels is not None else None
    pixels = to_uint8(images).permute(0, 2, 3, 1).numpy()  # (n, H, W, C)
    out.mkdir(parents=True, exist_ok=True)
    for i, px in enumerate(pixels):
        info = PngInfo()
        if seeds:
            extra = {"ganlab.seed": str(seeds[i]), "ganlab.latent_index": "0"}  # z = the seed's first draw
        else:
            extra = {"ganlab.latent_index": str(int(index[i]))}  # the seeded batch's row: same seed, same z
        if labels is not None:
            extra["ganlab.class"] = gen.class_names[int(labels[i])]
        if scores is not None:
            extra["ganlab.d_score"] = f"{float(scores[i]):.6g}"  # D's logit: > 0 leans "real"
        for k, v in {**provenance, **extra}.items():
            info.add_text(k, v)
        name = f"seed{seeds[i]:04d}.png" if seeds else f"{i:06d}.png"
        Image.fromarray(px[..., 0] if px.shape[-1] == 1 else px).save(out / name, pnginfo=info)
    columns = gen.num_classes if labels is not None and cfg.get("class") is None and not cfg.select else None
    nrow = cfg.nrow or columns or max(1, int(math.sqrt(n)))  # conditional: one column per class
    written = [preview_path(out, "grid")]
    save_grid(images, nrow, written[0])
    if cfg.interpolate > 0:
        z = z[index]
        rows = min(cfg.interpolate_rows, n // 2) or 1
        a, b = z[:rows], z[rows : 2 * rows] if n >= 2 * rows else z.roll(1, 0)[:rows]
        path = slerp(a, b, torch.linspace(0, 1, cfg.interpolate)).reshape(-1, z.shape[1])
        y = (
            None if labels is None else labels[:rows].repeat_interleave(cfg.interpolate)
        )  # each row: a's class
        frames = gen(path, y).cpu()
        written.append(preview_path(out, "interpolation"))
        save_grid(frames, cfg.interpolate, written[-1])
    log.info(
        "wrote %d images%s to %s; previews: %s", n, f" (D's top {n} of {m})" if cfg.select else "", out,
        ", ".join(str(p) for p in written),
    )  # fmt: skip
    return out


@hydra.main(version_base="1.3", config_path="conf", config_name="generate")
@report_user_errors
def main(cfg: DictConfig) -> None:
    generate(cfg)


if __name__ == "__main__":
    main()
