"""Extending ganlab the way a contributor or user does: a new loss, model and dataset, each one
Python file plus one yaml, without touching ganlab, its ``__init__.py`` files or its tests."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from tests.conftest import ROOT, TINY

THROWAWAY = {
    "my_gan_pkg/throwaway_loss.py": '''
import torch.nn.functional as F
from ganlab.losses.base import GANLoss


class ThrowawayLoss(GANLoss):
    """A least-squares variant, to prove a loss is one file."""

    def d_objective(self, real_logits, fake_logits, real_t, fake_t):
        return F.mse_loss(real_logits.float(), real_t) + F.mse_loss(fake_logits.float(), fake_t)

    def g_objective(self, real_logits, fake_logits):
        return 0.5 * ((fake_logits.float() - 1) ** 2).mean()
''',
    "my_gan_pkg/throwaway_model.py": """
from torch import nn
from ganlab.models.base import Discriminator, Generator


class TinyG(Generator):
    def __init__(self, nz, image_size, channels):
        super().__init__()
        self.nz, self.image_size, self.channels = nz, image_size, channels
        self.net = nn.Sequential(nn.Linear(nz, channels * image_size * image_size), nn.Tanh())

    def forward(self, z):
        return self.net(z).view(-1, self.channels, self.image_size, self.image_size)


class TinyD(Discriminator):
    def __init__(self, image_size, channels):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(channels * image_size * image_size, 1))

    def forward(self, x):
        return self.net(x).squeeze(1)
""",
    "my_gan_pkg/throwaway_data.py": '''
import numpy as np
from ganlab.data.base import GANDataModule
from ganlab.data.datasets import ArrayImages


class NoiseDataModule(GANDataModule):
    """64 random grey images, to prove a dataset is one file."""

    def build_dataset(self, transform):
        images = np.random.default_rng(0).integers(0, 256, (64, 32, 32), dtype=np.uint8)
        return ArrayImages(images, self.channels, transform)
''',
    "my_conf/loss/throwaway.yaml": (
        "defaults:\n  - /shared/loss@_here_\n  - _self_\n\n"
        "_target_: my_gan_pkg.throwaway_loss.ThrowawayLoss\n"
    ),
    "my_conf/model/throwaway.yaml": (
        "defaults:\n  - /shared/model@_here_\n  - _self_\n\n"
        "generator:\n  _target_: my_gan_pkg.throwaway_model.TinyG\n"
        "  nz: ${model.nz}\n  image_size: ${data.image_size}\n  channels: ${data.channels}\n"
        "discriminator:\n  _target_: my_gan_pkg.throwaway_model.TinyD\n  image_size: ${data.image_size}\n"
        "  channels: ${data.channels}\nnz: 8\n"
    ),
    "my_conf/data/throwaway.yaml": (
        "_target_: my_gan_pkg.throwaway_data.NoiseDataModule\nroot: ${paths.data_dir}\nimage_size: 32\n"
        "channels: 1\nbatch_size: 8\nnum_workers: 0\nseed: ${seed}\n"
    ),
}


def test_a_new_loss_model_and_dataset_are_one_file_and_one_yaml_each(tmp_path):
    """Written into a temporary folder, never into ganlab or its tests: three Python files and three
    yaml files, found through --config-dir and PYTHONPATH, train together."""
    for name, text in THROWAWAY.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text.lstrip())
    (tmp_path / "my_gan_pkg" / "__init__.py").write_text("")
    args = [a for a in TINY if not a.startswith(("data.", "model."))]
    cmd = [sys.executable, "-m", "ganlab.train", "--config-dir", "my_conf", "loss=throwaway",
           "model=throwaway", "data=throwaway", *args, "hydra.run.dir=run"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}:{ROOT}"}
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    ck = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ck["ganlab"]["counters"]["iterations"] == 8  # 64 images / batch 8
    assert ck["ganlab"]["config"]["loss"]["_target_"] == "my_gan_pkg.throwaway_loss.ThrowawayLoss"
