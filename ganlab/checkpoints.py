"""Read ganlab checkpoints outside training: the generator, its prior and the run's config."""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch import Tensor, nn

from ganlab.atomic import atomic_path
from ganlab.errors import CheckpointError, UsageError
from ganlab.hashing import config_hash, file_digest  # noqa: F401  (provenance helpers, imported from here)
from ganlab.latent import sample_latent

log = logging.getLogger(__name__)


@dataclass
class LoadedGenerator:
    G: nn.Module
    nz: int
    latent: str
    config: dict[str, Any]
    iterations: int
    path: Path
    ema: bool = False  # the weights are G_ema's
    class_names: list[str] | None = None  # a class-conditional G's classes, label i = class_names[i]

    @property
    def num_classes(self) -> int:
        return len(self.class_names) if self.class_names else 0

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """(n, nz) from the run's prior, drawn on the CPU (reproducible across devices)."""
        return sample_latent(n, self.nz, self.latent, generator)

    def class_index(self, name: str | int) -> int:
        """A class by name (``cat``) or index (``3``, ``"3"``); a clear error otherwise."""
        if not self.class_names:
            raise UsageError(f"{self.path} is an unconditional generator: leave class= out")
        if str(name) in self.class_names:
            return self.class_names.index(str(name))
        if str(name).isdigit() and int(name) < len(self.class_names):
            return int(name)
        raise UsageError(f"class={name} is not a class of {self.path}; its classes: {self.class_names}")

    def labels(self, n: int, name: str | int | None = None) -> Tensor | None:
        """(n,) labels for a conditional G: all ``name``'s class, or cycling through the classes
        (balanced); None for an unconditional G."""
        if not self.num_classes:
            if name is not None:
                self.class_index(name)  # raises: no classes
            return None
        if name is not None:
            return torch.full((n,), self.class_index(name), dtype=torch.int64)
        return torch.arange(n) % self.num_classes

    @torch.no_grad()
    def __call__(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Images (n, C, H, W) in [-1, 1], G in eval mode, fp32; ``y`` (n,): class labels."""
        device = next(self.G.parameters()).device
        if y is None and self.num_classes:
            raise ValueError("a conditional generator needs labels: gen(z, y)")
        return (self.G(z.to(device)) if y is None else self.G(z.to(device), y.to(device))).float()


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


def newest_intact_checkpoint(dirpath: str | Path) -> Path | None:
    """The checkpoint a ``ckpt_path=last`` resume takes from ``dirpath``: ``last.ckpt`` when it
    reads, else the newest readable ``it*.ckpt`` (a kill or a full disk can cut a file short;
    ganlab's atomic writes make that rare, copies and other tools do not), each one skipped
    named in a warning; None when there is none."""
    dirpath = Path(dirpath)
    if not dirpath.is_dir():
        return None
    snapshots = sorted(
        dirpath.glob("it*.ckpt"), key=lambda p: p.name, reverse=True
    )  # it0000042: by iteration
    for path in [dirpath / "last.ckpt", *snapshots]:
        if not path.is_file():
            continue
        try:
            read_checkpoint(path)
        except CheckpointError as e:
            log.warning("skipping an unreadable checkpoint: %s", e)
            continue
        return path
    return None


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
        G, model["nz"], model["latent"], config, state["counters"]["iterations"], path, prefix == "G_ema.",
        model.get("class_names"),
    )  # fmt: skip


def load_discriminator(path: str | Path, device: str | torch.device = "cpu", key: str = "ckpt") -> nn.Module:
    """A checkpoint's D in eval mode (for discriminator-based sample selection)."""
    ckpt = read_checkpoint(path, key)
    D = instantiate(ckpt["ganlab"]["config"]["model"]["discriminator"])
    D.load_state_dict({k[2:]: v for k, v in ckpt["state_dict"].items() if k.startswith("D.")})
    return D.to(device).eval().requires_grad_(False)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Each checkpoint written through ``ganlab.atomic.atomic_path`` (a temporary file beside
    it, fsynced, then renamed over it): a crash or a full disk mid-save leaves the previous file
    whole, and a failed write stops the run with one message saying so. Remote paths
    (``s3://`` ...) go through Lightning's fsspec path unchanged."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        try:
            with atomic_path(path) as tmp, open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
        except (OSError, RuntimeError) as e:  # torch.save reports a full disk as a RuntimeError
            raise CheckpointWriteError(path, e) from None


class CheckpointWriteError(CheckpointError):
    """A checkpoint could not be written (full disk, quota, permissions); the previous one is intact."""

    def __init__(self, path: str | Path, error: BaseException) -> None:
        path = Path(path)
        try:
            free = f"{shutil.disk_usage(path.parent).free / 2**20:.1f} MiB free there"
        except OSError:
            free = "free space unknown"
        reason = (
            error.strerror if isinstance(error, OSError) and error.strerror else str(error).splitlines()[0]
        )
        super().__init__(
            f"could not write the checkpoint '{path}' ({reason}; {free}) (callbacks.checkpoint.dirpath): "
            "free disk space or point it at another disk, then resume with ckpt_path=last; the previous "
            "checkpoint is intact"
        )
