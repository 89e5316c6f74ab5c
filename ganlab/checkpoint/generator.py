"""A checkpoint's generator (and discriminator) outside training: for ``ganlab-generate``,
``ganlab-evaluate``, the run report and your own scripts (``ganlab.api.load_generator``).

A ganlab checkpoint, or an official StyleGAN2-ADA network pickle (``network-snapshot-*.pkl``,
the published pretrained networks), read by ``ganlab.models.stylegan2.load_network_pkl`` without
running any of its code: every command that takes a checkpoint takes such a file."""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from torch import Tensor, nn

from ganlab.checkpoint.format import HOW, read_state
from ganlab.training.latent import sample_latent
from ganlab.utils.errors import CheckpointError, UsageError

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
    # a style-based G's keywords for every call: truncation_psi, truncation_cutoff, noise_mode
    options: dict[str, Any] = field(default_factory=dict)
    # (num_classes, w_dim): truncate each sample toward its class's mean w (truncation_center=class)
    class_centers: Tensor | None = None

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
        y = None if y is None else y.to(device)
        options = dict(self.options)
        if self.class_centers is not None and y is not None:
            options["truncation_center"] = self.class_centers.to(device)[y]
        return self.G(z.to(device), y, **options).float()


def is_network_pkl(path: str | Path) -> bool:
    """An official network pickle rather than a ganlab checkpoint (a zip archive, torch.save's)."""
    path = Path(path)
    return path.suffix == ".pkl" or (path.is_file() and not zipfile.is_zipfile(path))


def load_generator(
    path: str | Path, device: str | torch.device = "cpu", key: str = "ckpt"
) -> LoadedGenerator:
    path = Path(path)
    if is_network_pkl(path):
        return network_pkl_generator(path, device, key)
    ckpt, state = read_state(path, key)
    config = state.config
    G = instantiate(config["model"]["generator"])
    # The EMA generator when the run kept one: it is what samples and metrics use.
    prefix = "G_ema." if any(k.startswith("G_ema.") for k in ckpt["state_dict"]) else "G."
    weights = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    G.load_state_dict(weights)
    G.to(device).eval().requires_grad_(False)
    model = config["model"]
    return LoadedGenerator(
        G, model["nz"], model["latent"], config, state.iterations, path, prefix == "G_ema.",
        model.get("class_names"),
    )  # fmt: skip


def network_pkl_generator(path: Path, device: str | torch.device, key: str) -> LoadedGenerator:
    """An official pickle's G_ema (else G): z ~ N(0, I), classes named by their index; its
    ``config`` holds the architecture (``model.generator``) and no data, which the pickle names
    only as a path of the machine it trained on."""
    from ganlab.models.stylegan2 import load_network_pkl

    nets = load_network_pkl(path, key)
    name = "G_ema" if "G_ema" in nets else "G"
    if name not in nets:
        raise CheckpointError(f"{key}={path}: the pickle holds {sorted(nets)}, no generator; {HOW}")
    G = nets[name].to(device).eval().requires_grad_(False)
    generator = {"_target_": f"ganlab.models.stylegan2.{type(G).__name__}", **G.init_kwargs}
    config = {"model": {"generator": generator, "nz": G.z_dim, "latent": "normal"}, "network_pkl": str(path)}
    names = [str(i) for i in range(G.c_dim)] or None
    return LoadedGenerator(G, G.z_dim, "normal", config, 0, path, name == "G_ema", names)


def load_discriminator(path: str | Path, device: str | torch.device = "cpu", key: str = "ckpt") -> nn.Module:
    """A checkpoint's (or an official pickle's) D in eval mode (for discriminator-based sample
    selection)."""
    if is_network_pkl(path):
        from ganlab.models.stylegan2 import load_network_pkl

        D = load_network_pkl(path, key).get("D")
        if D is None:
            raise CheckpointError(f"{key}={path}: the pickle holds no discriminator; {HOW}")
    else:
        ckpt, state = read_state(path, key)
        D = instantiate(state.config["model"]["discriminator"])
        D.load_state_dict({k[2:]: v for k, v in ckpt["state_dict"].items() if k.startswith("D.")})
    return D.to(device).eval().requires_grad_(False)
