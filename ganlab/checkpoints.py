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

from ganlab.atomic import atomic_path
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


class CheckpointError(ValueError):
    """A checkpoint path that cannot be used; the message names the file and what to pass."""


HOW = "pass a checkpoint written by a ganlab run, e.g. outputs/train/runs/<date>/checkpoints/last.ckpt"


def read_checkpoint(path: str | Path, key: str = "ckpt_path") -> dict[str, Any]:
    """Load a ganlab checkpoint safely (``weights_only=True``, memory-mapped) or raise one
    ``CheckpointError`` naming the file, what is wrong with it and ``key``, the setting to fix.
    Never suggests unpickling arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{key}={path}: no such file; {HOW}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{key}={path}: the file is empty (a write that never finished?); {HOW}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # torch raises RuntimeError, UnpicklingError, EOFError ... by format
        raise CheckpointError(
            f"{key}={path}: not a readable PyTorch checkpoint (truncated, another format, or not "
            f"made by ganlab: {type(e).__name__}); {HOW}"
        ) from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{key}={path}: holds a {type(ckpt).__name__}, not a ganlab checkpoint; {HOW}")
    state = ckpt.get("ganlab")
    if "pytorch-lightning_version" not in ckpt or not isinstance(state, dict) or not state.get("config"):
        raise CheckpointError(
            f"{key}={path}: a dict without ganlab's training state (keys: {sorted(ckpt)[:6]}), "
            f"not a ganlab checkpoint; {HOW}"
        )
    return ckpt


def load_generator(
    path: str | Path, device: str | torch.device = "cpu", key: str = "ckpt"
) -> LoadedGenerator:
    path = Path(path)
    ckpt = read_checkpoint(path, key)
    state = ckpt["ganlab"]
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
    """Each checkpoint written through ``ganlab.atomic.atomic_path`` (a temporary file beside
    it, fsynced, then renamed over it): a crash or a full disk mid-save leaves the previous file
    whole. Remote paths (``s3://`` ...) go through Lightning's fsspec path unchanged."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
