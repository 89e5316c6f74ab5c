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

A style-based G (``model=stylegan2``, or ``ckpt=`` an official StyleGAN2-ADA network pickle, read
without running its code): ``truncation=0.7`` is psi, w pulled toward the mean w the G tracked
(``truncation_cutoff=8``: only the first 8 ws); ``noise_mode=const`` (default: the stored noise,
the same image every time), ``random`` or ``none``; ``mix=3x4`` style mixing as the official
``style_mixing.py``: the first 3 seeds are rows, the next 4 columns, and each image takes its
row's ws but ``mix_styles`` (0-6: the coarse styles) from its column's; written as
``seed<row>-seed<col>.png`` and the grid ``<out>.mixing.png`` (the rows' and columns' own images
on its edges). The PNGs carry these settings too.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from omegaconf import DictConfig

import ganlab.run.resolvers  # noqa: F401
from ganlab.evaluate import pick_device, require_count, sampling
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
    if cfg.truncation is not None and (
        isinstance(cfg.truncation, bool) or not isinstance(cfg.truncation, (int, float))
    ):
        raise bad_setting("truncation must be a number, or null", "truncation", cfg.truncation,
                          "truncation=0.7")  # fmt: skip
    if cfg.noise_mode not in NOISE_MODES:
        raise bad_setting(f"noise_mode must be one of {NOISE_MODES}", "noise_mode", cfg.noise_mode,
                          "noise_mode=const")  # fmt: skip
    if cfg.select not in (None, "top_d"):
        raise bad_setting("select must be null or top_d", "select", cfg.select, "select=top_d")
    if cfg.select and not 0 < cfg.keep <= 1:
        raise bad_setting(
            "keep (the share of candidates kept) must be in (0, 1]", "keep", cfg.keep, "keep=0.1"
        )
    if cfg.select and cfg.get("seeds") is not None:
        raise UsageError("select=top_d draws n / keep candidates from seed=, not one image per seed (seeds): "
                         "leave seeds= out, or select= out")  # fmt: skip
    if cfg.get("seeds") is not None:
        parse_seeds(cfg.seeds)
    if cfg.get("mix") is not None:
        mix_shape(cfg.mix)


NOISE_MODES = ("const", "random", "none")


def mix_shape(spec) -> tuple[int, int]:
    """``mix=3x4`` -> (3 rows, 4 columns)."""
    rows, x, cols = str(spec).partition("x")
    if not (x and rows.isdigit() and cols.isdigit() and int(rows) > 0 and int(cols) > 0):
        raise bad_setting("mix must be ROWSxCOLUMNS", "mix", spec, "mix=3x4")
    return int(rows), int(cols)


def generate(cfg: DictConfig) -> Path:
    from ganlab.checkpoint.generator import load_generator
    from ganlab.run.directory import check_writable

    check_generate_settings(cfg)
    device, out = pick_device(cfg.device), Path(cfg.out)
    check_writable({"out": out})
    gen = load_generator(cfg.ckpt, device)
    sample = sampling(cfg, gen)
    if cfg.get("mix") is not None and not getattr(gen.G, "style_based", False):
        raise UsageError("mix= mixes the styles of a style-based generator (model=stylegan2, or an official "
                         "network pickle): leave it out")  # fmt: skip
    provenance = provenance_of(cfg, gen)
    if cfg.get("mix") is not None:
        style_mixing(cfg, gen, out, provenance)
        return out
    seeds = parse_seeds(cfg.seeds) if cfg.get("seeds") is not None else None
    n = len(seeds) if seeds else cfg.n
    images, z, labels, index, scores = draw(cfg, gen, sample, seeds, n, device)
    write_samples(out, images, gen, provenance, seeds, index, labels, scores)
    previews(cfg, gen, out, images, z[index], labels, n)
    log.info("wrote %d images%s to %s", n, f" (D's top {n} of {z.shape[0]})" if cfg.select else "", out)
    return out


def provenance_of(cfg: DictConfig, gen) -> dict[str, str]:
    """What every PNG carries: the checkpoint, its hash and its config's, the seed, the sampling."""
    from ganlab.utils.hashing import config_hash, file_digest

    provenance = {
        "ganlab.ckpt": str(Path(cfg.ckpt).resolve()),
        "ganlab.ckpt_sha256": file_digest(cfg.ckpt),
        "ganlab.config_sha256": config_hash(gen.config),
        "ganlab.iteration": str(gen.iterations),
        "ganlab.seed": str(cfg.seed),
    }
    if cfg.truncation is not None:
        provenance["ganlab.truncation"] = str(cfg.truncation)
        if gen.class_centers is not None:
            provenance["ganlab.truncation_center"] = "class"
    provenance.update({f"ganlab.{k}": str(v) for k, v in gen.options.items() if v is not None})
    return provenance


def draw(cfg: DictConfig, gen, sample, seeds: list[int] | None, n: int, device):
    """The images (m, C, H, W) of ``n`` latents (one per seed with ``seeds``), or of n / keep
    candidates ranked by D (``select=top_d``): (images, all latents, labels, the kept rows of
    the latents in order, D's scores or None)."""
    import torch

    from ganlab.checkpoint.generator import load_discriminator

    m = math.ceil(n / cfg.keep) if cfg.select else n
    if seeds:  # one generator per seed: an image depends on its seed only
        z = torch.cat([sample(1, generator=torch.Generator().manual_seed(s)) for s in seeds])
    else:
        z = sample(m, generator=torch.Generator().manual_seed(cfg.seed))  # (m, nz)
    labels = gen.labels(m, cfg.get("class"))  # (m,): the class asked for, or every class in turn
    images = batched(gen, z, labels, cfg.batch_size)
    index, scores = torch.arange(m), None
    if cfg.select:
        scores = d_scores(load_discriminator(cfg.ckpt, device), images, labels, cfg.batch_size)
        index = scores.argsort(descending=True)[:n]  # D's most "real" first
        images, scores = images[index], scores[index]
        labels = labels[index] if labels is not None else None
    return images, z, labels, index, scores


def batched(gen, z: Tensor, labels: Tensor | None, batch_size: int) -> Tensor:
    """``gen`` on ``z`` (and ``labels``) in batches, on the CPU."""
    import torch

    return torch.cat([
        gen(z[i : i + batch_size], None if labels is None else labels[i : i + batch_size]).cpu()
        for i in range(0, z.shape[0], batch_size)
    ])  # fmt: skip


def save_png(path: Path, image: Tensor, info: dict[str, str]) -> None:
    """One image (C, H, W) in [-1, 1] as a PNG with ``info`` as its text chunks."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    from ganlab.utils.images import to_uint8

    px = to_uint8(image[None]).permute(0, 2, 3, 1).numpy()[0]  # (H, W, C)
    chunks = PngInfo()
    for k, v in info.items():
        chunks.add_text(k, v)
    Image.fromarray(px[..., 0] if px.shape[-1] == 1 else px).save(path, pnginfo=chunks)


def write_samples(out: Path, images, gen, provenance, seeds, index, labels, scores) -> None:
    """``000000.png`` ... (or ``seed0000.png`` ...), each with its provenance."""
    out.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        if seeds:
            extra = {"ganlab.seed": str(seeds[i]), "ganlab.latent_index": "0"}  # z = the seed's first draw
        else:
            extra = {"ganlab.latent_index": str(int(index[i]))}  # the seeded batch's row: same seed, same z
        if labels is not None:
            extra["ganlab.class"] = gen.class_names[int(labels[i])]
        if scores is not None:
            extra["ganlab.d_score"] = f"{float(scores[i]):.6g}"  # D's logit: > 0 leans "real"
        save_png(
            out / (f"seed{seeds[i]:04d}.png" if seeds else f"{i:06d}.png"), image, {**provenance, **extra}
        )


def previews(cfg: DictConfig, gen, out: Path, images, z, labels, n: int) -> None:
    """``<out>.grid.png``, and with ``interpolate=K`` ``<out>.interpolation.png``."""
    import torch

    from ganlab.utils.images import save_grid

    columns = gen.num_classes if labels is not None and cfg.get("class") is None and not cfg.select else None
    nrow = cfg.nrow or columns or max(1, int(math.sqrt(n)))  # conditional: one column per class
    written = [preview_path(out, "grid")]
    save_grid(images, nrow, written[0])
    if cfg.interpolate > 0:
        rows = min(cfg.interpolate_rows, n // 2) or 1
        a, b = z[:rows], z[rows : 2 * rows] if n >= 2 * rows else z.roll(1, 0)[:rows]
        path = slerp(a, b, torch.linspace(0, 1, cfg.interpolate)).reshape(-1, z.shape[1])
        y = (
            None if labels is None else labels[:rows].repeat_interleave(cfg.interpolate)
        )  # each row: a's class
        written.append(preview_path(out, "interpolation"))
        save_grid(gen(path, y).cpu(), cfg.interpolate, written[-1])
    log.info("previews: %s", ", ".join(str(p) for p in written))


def style_mixing(cfg: DictConfig, gen, out: Path, provenance: dict[str, str]) -> None:
    """``mix=RxC``: each row seed's ws with ``mix_styles`` taken from each column seed's (Karras
    et al. 2019, sec. 3.1; the official ``style_mixing.py``): ``seed<r>-seed<c>.png`` in ``out``
    and ``<out>.mixing.png``, (R + 1) x (C + 1) with the seeds' own images on the edges."""
    import torch

    from ganlab.utils.images import save_grid

    rows, cols = mix_shape(cfg.mix)
    seeds = parse_seeds(cfg.seeds) if cfg.get("seeds") is not None else list(range(rows + cols))
    if len(seeds) < rows + cols:
        raise bad_setting(
            f"mix={cfg.mix} needs {rows + cols} seeds", "seeds", cfg.seeds, f"seeds=0-{rows + cols - 1}"
        )
    G, device = gen.G, next(gen.G.parameters()).device
    styles = parse_seeds(cfg.mix_styles)
    if max(styles) >= G.num_ws:
        raise bad_setting(
            f"this G has {G.num_ws} ws (0-{G.num_ws - 1})", "mix_styles", cfg.mix_styles, "mix_styles=0-6"
        )
    z = torch.cat([gen.sample_z(1, generator=torch.Generator().manual_seed(s)) for s in seeds[: rows + cols]])
    labels = gen.labels(z.shape[0], cfg.get("class"))
    truncation = {k: gen.options[k] for k in ("truncation_psi", "truncation_cutoff") if k in gen.options}
    if gen.class_centers is not None and labels is not None:
        truncation["truncation_center"] = gen.class_centers.to(device)[labels.to(device)]
    with torch.no_grad():
        ws = G.mapping(z.to(device), None if labels is None else labels.to(device), **truncation)
        row_ws, col_ws = ws[:rows], ws[rows:]
        mixed = row_ws[:, None].repeat(1, cols, 1, 1)  # (R, C, num_ws, w_dim)
        mixed[:, :, styles] = col_ws[None, :, styles]
        noise = gen.options.get("noise_mode", "const")
        own = G.synthesis(ws, noise_mode=noise).float().cpu()  # (R + C, ...)
        mixes = G.synthesis(mixed.flatten(0, 1), noise_mode=noise).float().cpu()  # (R * C, ...)
    out.mkdir(parents=True, exist_ok=True)
    for r in range(rows):
        for c in range(cols):
            info = {**provenance, "ganlab.seed": str(seeds[r]), "ganlab.mix_seed": str(seeds[rows + c]),
                    "ganlab.mix_styles": str(cfg.mix_styles)}  # fmt: skip
            save_png(out / f"seed{seeds[r]:04d}-seed{seeds[rows + c]:04d}.png", mixes[r * cols + c], info)
    blank = torch.full_like(own[:1], -1.0)  # the grid's corner
    grid = [blank, own[rows:]] + [
        torch.cat([own[r : r + 1], mixes[r * cols : (r + 1) * cols]]) for r in range(rows)
    ]
    save_grid(torch.cat(grid), cols + 1, preview_path(out, "mixing"))
    log.info("wrote %d style mixes to %s; preview: %s", rows * cols, out, preview_path(out, "mixing"))


@hydra.main(version_base="1.3", config_path="conf", config_name="generate")
@report_user_errors
def main(cfg: DictConfig) -> None:
    generate(cfg)


if __name__ == "__main__":
    main()
