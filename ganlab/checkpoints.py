"""Read ganlab checkpoints outside training: the generator, its prior and the run's config."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch import Tensor, nn

from ganlab.module import sample_latent


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class LoadedGenerator:
    G: nn.Module
    nz: int
    latent: str
    config: dict[str, Any]
    iterations: int
    path: Path
    ema: bool = False  # the weights are G_ema's

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """(n, nz) from the run's prior, drawn on the CPU (reproducible across devices)."""
        return sample_latent(n, self.nz, self.latent, generator)

    @torch.no_grad()
    def __call__(self, z: Tensor) -> Tensor:
        """Images (n, C, H, W) in [-1, 1], G in eval mode, fp32."""
        device = next(self.G.parameters()).device
        return self.G(z.to(device)).float()


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> LoadedGenerator:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint not found: '{path}' (runs write outputs/train/runs/<date>/checkpoints/)"
        )
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    state = ckpt.get("ganlab")
    if not state or not state.get("config"):
        raise ValueError(f"'{path}' is not a ganlab checkpoint with a stored config")
    config = state["config"]
    G = instantiate(config["model"]["generator"])
    # The EMA generator when the run kept one: it is what samples and metrics use.
    prefix = "G_ema." if any(k.startswith("G_ema.") for k in ckpt["state_dict"]) else "G."
    weights = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    G.load_state_dict(weights)
    G.to(device).eval().requires_grad_(False)
    model = config["model"]
    return LoadedGenerator(
        G, model["nz"], model["latent"], config, state["counters"]["iterations"], path, prefix == "G_ema."
    )


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temporary file in the same directory, fsync it, then
    ``os.replace`` it into place: a crash or a full disk mid-save leaves the previous file whole.

    (Lightning's own save stages the file in the system temp dir and moves it, which turns into
    a non-atomic copy when /tmp and the run directory are on different filesystems.)
    Remote paths (``s3://`` ...) go through Lightning's fsspec path unchanged.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
