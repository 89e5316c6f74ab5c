"""Shared fixtures: small datasets written in their real on-disk layouts, and Hydra composition."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import DictConfig
from PIL import Image

import ganlab.run.resolvers  # noqa: F401  (resolvers)
from ganlab import api

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "ganlab" / "conf"

os.environ.setdefault("WANDB_MODE", "offline")  # tests never reach the network
os.environ.setdefault("WANDB_SILENT", "true")
# `make test` runs two pytest workers on two cores: one torch thread each (and in every process a
# test starts), or the threads of both fight over the cores and everything runs 3-5x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

# A tiny, fast configuration: 32 px, 8 filters, batch 8, CPU, no progress bar.
TINY = [
    "data.image_size=32",
    "data.batch_size=8",
    "data.num_workers=0",
    "model.generator.ngf=8",
    "model.discriminator.ndf=8",
    "model.nz=16",
    "model.n_fixed=16",
    "trainer=cpu",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.log_every_n_steps=1",
    "logger=csv",
    "callbacks.samples.every_n_iterations=2",
    "callbacks.checkpoint.every_n_iterations=2",
    "callbacks.report=null",  # matplotlib at every run's end: tested on its own (test_tool.py)
]


# model=stylegan2 at the same tiny size (TINY's DCGAN widths left out): 16 channels, 2 mapping layers.
TINY_STYLEGAN2 = [
    *(o for o in TINY if not o.startswith(("model.generator.ngf", "model.discriminator.ndf"))),
    "model=stylegan2",
    "model.generator.w_dim=16",
    "model.generator.mapping_kwargs.num_layers=2",
    "model.generator.synthesis_kwargs.channel_base=256",
    "model.generator.synthesis_kwargs.channel_max=16",
    "model.discriminator.epilogue_kwargs.mbstd_group_size=2",
]


def rng_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Smooth random colour blobs (not pure noise), uint8 (n, size, size, 3)."""
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        cx, cy, s = r.uniform(0.2, 0.8), r.uniform(0.2, 0.8), r.uniform(0.05, 0.3)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / s**2)
        colour = r.uniform(0, 1, 3)
        out[i] = (255 * (0.1 + 0.8 * blob[..., None] * colour)).astype(np.uint8)
    return out


def write_image_tree(root: Path, n: int = 40, size: int = 40) -> Path:
    """jpg and png files in nested folders, one RGBA, as users' image folders look."""
    imgs = rng_images(n, size)
    for i, a in enumerate(imgs):
        sub = root / f"class_{i % 3}" / ("deep" if i % 5 == 0 else "")
        sub.mkdir(parents=True, exist_ok=True)
        if i == 1:
            rgba = np.dstack([a, np.full(a.shape[:2], 128, np.uint8)])
            Image.fromarray(rgba, "RGBA").save(sub / f"img_{i:03d}.png")
        elif i % 2:
            Image.fromarray(a).save(sub / f"img_{i:03d}.png")
        else:
            Image.fromarray(a).save(sub / f"img_{i:03d}.jpg", quality=95)
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(autouse=True)
def own_wandb_service(monkeypatch):
    """A test's subprocesses start W&B services of their own, as a user's runs do. Once a test in
    this worker has used W&B in-process, wandb exports WANDB_SERVICE and every child would join
    that one service, which still holds a kill -9'd run's id, so its resume fails with "run ID
    ... is in use" (seen when a shipped kill -9 test ran after such a test on its worker)."""
    monkeypatch.delenv("WANDB_SERVICE", raising=False)


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory) -> Path:
    return write_image_tree(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="session")
def cifar_dir(tmp_path_factory) -> Path:
    """``cifar-10-batches-py`` with the real pickle structure: 5 train batches + test + meta."""
    root = tmp_path_factory.mktemp("cifar10")
    base = root / "cifar-10-batches-py"
    base.mkdir()
    for b, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        imgs = rng_images(20, 32, seed=b)  # (20, 32, 32, 3)
        labels = [(b * 20 + i) % 10 for i in range(20)]
        entry = {"data": imgs.transpose(0, 3, 1, 2).reshape(20, -1), "labels": labels, "batch_label": name}
        with open(base / name, "wb") as f:
            pickle.dump(entry, f)
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog"]}, f)
    return root


def write_idx(path: Path, arr: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


@pytest.fixture(scope="session")
def idx_dir(tmp_path_factory) -> Path:
    """Fashion-MNIST layout: train-images-idx3-ubyte.gz of 28x28 grey images."""
    root = tmp_path_factory.mktemp("fashion")
    write_idx(root / "train-images-idx3-ubyte.gz", rng_images(48, 28)[..., 0])
    write_idx(root / "train-labels-idx1-ubyte.gz", np.arange(48) % 10)
    return root


@pytest.fixture(scope="session")
def celeba_dir(tmp_path_factory) -> Path:
    """torchvision's CelebA layout: <root>/celeba/img_align_celeba/000001.jpg, 178x218."""
    root = tmp_path_factory.mktemp("celeba_root") / "celeba"
    d = root / "img_align_celeba"
    d.mkdir(parents=True)
    for i, a in enumerate(rng_images(24, 218)):
        Image.fromarray(a[:, 20:198]).save(d / f"{i + 1:06d}.jpg")
    return root


def fit(overrides: list[str], tmp_path: Path, image_dir: Path, base: list[str] = TINY):
    """``ganlab.train.train`` in this process on the fixture image tree: (result, config)."""
    from ganlab.train import train

    cfg = compose_cfg([*base, "data=image_folder", f"data.root={image_dir}", *overrides], tmp_path)
    return train(cfg), cfg


def load(path: Path) -> dict:
    """A checkpoint, whole (tests only: ganlab itself loads with weights_only=True)."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def compose_cfg(overrides: list[str], output_dir: Path) -> DictConfig:
    """Compose conf/train.yaml as `python -m ganlab.train` would, outside a Hydra app."""
    return api.compose(overrides, output_dir)


def run_cli(
    args: list[str], cwd: Path, timeout: int = 300, env: dict | None = None
) -> subprocess.CompletedProcess:
    """`python -m ganlab.train args` in a fresh process; output captured."""
    e = {**os.environ, "HYDRA_FULL_ERROR": "0", "PYTHONWARNINGS": "ignore", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ganlab.train", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=e,
    )
