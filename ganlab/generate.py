"""Sample from a checkpoint: ``python -m ganlab.generate ckpt=... n=64 out=dir``.

Each PNG carries its provenance as PNG text chunks (read them with PIL's ``Image.open(p).text``):
``ganlab.ckpt_sha256``, ``ganlab.config_sha256`` (the run's resolved config), ``ganlab.seed``,
``ganlab.latent_index`` (the row of the seeded latent batch: the same seed and index give the
same z), ``ganlab.iteration``. ``interpolate=K`` adds rows of K images along the great circle
between pairs of latents (slerp; White 2016, "Sampling Generative Networks").
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from omegaconf import DictConfig

import ganlab.config  # noqa: F401
from ganlab.errors import report_user_errors
from ganlab.evaluate import pick_device, require_count

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


def generate(cfg: DictConfig) -> Path:
    import torch
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo
    from torchvision.utils import make_grid, save_image

    from ganlab.checkpoints import config_hash, file_digest, load_generator
    from ganlab.metrics import to_uint8

    require_count(cfg, "n", "batch_size")
    device = pick_device(cfg.device)
    gen = load_generator(cfg.ckpt, device)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    provenance = {
        "ganlab.ckpt": str(Path(cfg.ckpt).resolve()),
        "ganlab.ckpt_sha256": file_digest(cfg.ckpt),
        "ganlab.config_sha256": config_hash(gen.config),
        "ganlab.iteration": str(gen.iterations),
        "ganlab.seed": str(cfg.seed),
    }
    z = gen.sample_z(cfg.n, generator=torch.Generator().manual_seed(cfg.seed))  # (n, nz)
    images = torch.cat([gen(z[i : i + cfg.batch_size]).cpu() for i in range(0, cfg.n, cfg.batch_size)])
    pixels = to_uint8(images).permute(0, 2, 3, 1).numpy()  # (n, H, W, C)
    for i, px in enumerate(pixels):
        info = PngInfo()
        for k, v in {**provenance, "ganlab.latent_index": str(i)}.items():
            info.add_text(k, v)
        Image.fromarray(px[..., 0] if px.shape[-1] == 1 else px).save(out / f"{i:06d}.png", pnginfo=info)
    nrow = cfg.nrow or max(1, int(math.sqrt(cfg.n)))
    save_image(make_grid(images, nrow=nrow, normalize=True, value_range=(-1, 1)), out / "grid.png")
    if cfg.interpolate > 0:
        rows = min(cfg.interpolate_rows, cfg.n // 2) or 1
        a, b = z[:rows], z[rows : 2 * rows] if cfg.n >= 2 * rows else z.roll(1, 0)[:rows]
        path = slerp(a, b, torch.linspace(0, 1, cfg.interpolate)).reshape(-1, z.shape[1])
        frames = gen(path).cpu()
        grid = make_grid(frames, nrow=cfg.interpolate, normalize=True, value_range=(-1, 1))
        save_image(grid, out / "interpolation.png")
    log.info(
        "wrote %d images, grid.png%s to %s", cfg.n, " and interpolation.png" if cfg.interpolate else "", out
    )
    return out


@hydra.main(version_base="1.3", config_path="conf", config_name="generate")
@report_user_errors
def main(cfg: DictConfig) -> None:
    generate(cfg)


if __name__ == "__main__":
    main()
