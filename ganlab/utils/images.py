"""Generated images to pixels: the one float [-1, 1] -> uint8 conversion (what FID's network,
the PNG files, W&B and TensorBoard all receive), and sample grids."""

from __future__ import annotations

import torch
from PIL import Image
from torch import Tensor
from torchvision.utils import make_grid


def to_uint8(images: Tensor) -> Tensor:
    """[-1, 1] float images -> uint8 [0, 255], rounded as PNG writers do (x*127.5 + 127.5 + 0.5)."""
    return (images.float() * 127.5 + 128.0).clamp(0, 255).to(torch.uint8)


def grid_uint8(images: Tensor, columns: int) -> Tensor:
    """Images (N, C, H, W) in [-1, 1] -> one grid (3, H', W') uint8 on the CPU, ``columns`` wide.
    (uint8, not float: wandb.Image reads float arrays as 0-255, so a [0, 1] grid shows black.)"""
    return to_uint8(make_grid(images.float().cpu(), nrow=columns, padding=2, pad_value=-1.0))


def save_grid(images: Tensor, columns: int, path) -> Tensor:
    """Write ``grid_uint8(images, columns)`` as a PNG; returns the grid."""
    grid = grid_uint8(images, columns)
    Image.fromarray(grid.permute(1, 2, 0).numpy()).save(path)
    return grid
