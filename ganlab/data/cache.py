"""Decoded-image cache and batched on-device augmentation.

``data.cache=true``: every image is decoded, centre-cropped and resized once to ``load_size``
and written as one uint8 array (N, C, L, L) in ``.npy`` format, memory-mapped afterwards.
Loader workers then only slice memory (no JPEG/PNG decoding), and batches cross to the GPU as
uint8 (4x less than float).
``data.device_resident=true`` (with the cache): the whole array lives on the training device;
the loader yields only sample keys and images are gathered there.
In both modes the random crop and flip run batched on the device, drawn from a hash of
(seed, epoch, index): the same in any process and after a resume, and independent of the RNG
streams that training uses.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ganlab.utils.atomic import atomic_path
from ganlab.utils.hashing import cache_key

log = logging.getLogger(__name__)


def cache_path(cache_dir: str | Path, fingerprint: dict) -> Path:
    key = cache_key(fingerprint)
    return Path(cache_dir) / f"images_{fingerprint.get('load_size', 'x')}px_{key}.npy"


def build_or_load(path: Path, dataset: Dataset) -> np.ndarray:
    """uint8 (N, C, L, L) memory map at ``path``; built from ``dataset`` (float [-1, 1] images,
    all the same shape) when missing, written to a temporary file and renamed into place."""
    if not path.is_file():
        n = len(dataset)
        first = dataset[0]
        log.info("building the image cache %s (%d images %s)", path, n, tuple(first.shape))
        with atomic_path(path) as tmp:
            arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, *first.shape))
            for i in range(n):
                arr[i] = ((dataset[i] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
            arr.flush()
            del arr
    return np.load(path, mmap_mode="r")


class CachedImages(Dataset):
    """key -> (uint8 image (C, L, L), key) from the memory-mapped cache."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, key: int):
        return torch.from_numpy(np.array(self.array[key % len(self.array)])), key


class Keys(Dataset):
    """key -> key: with device-resident images the loader moves only sample keys."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key: int) -> int:
        return key

    def __getitems__(self, keys: list[int]) -> Tensor:
        """A whole batch at once (DataLoader's batched fetch): one int64 tensor (B,), for
        ``collate_keys``, instead of B Python calls and a collate."""
        return torch.tensor(keys, dtype=torch.int64)


def collate_keys(batch: Tensor) -> Tensor:
    """The loader's collate for ``Keys``: the batch is already one tensor."""
    return batch


def _hash(x: Tensor, salt: int) -> Tensor:
    """A stateless integer hash in the style of splitmix64's finaliser, on int64 keys (torch has
    no uint64 arithmetic: the constants are their signed forms and shifts are arithmetic),
    non-negative int64 out."""
    x = x * -7046029254386353131 + salt  # 0x9E3779B97F4A7C15; int64 arithmetic wraps
    x = (x ^ (x >> 30)) * -4658895280553007687  # 0xBF58476D1CE4E5B9 as signed int64
    x = (x ^ (x >> 27)) * -7723592293110705685  # 0x94D049BB133111EB as signed int64
    return (x ^ (x >> 31)) & 0x7FFF_FFFF_FFFF_FFFF


def augment_batch(
    images: Tensor, keys: Tensor, size: int, random_crop: bool, hflip: bool, seed: int
) -> Tensor:
    """uint8 (B, C, L, L) on any device -> float (B, C, size, size) in [-1, 1]: per-sample crop
    offsets and flips from a hash of (seed, key); a centre crop when ``random_crop`` is off."""
    b, _, full, _ = images.shape
    if full == size and not hflip:  # nothing to crop or flip: only the scaling (a common fast path)
        return images.float().div_(127.5).sub_(1.0)
    keys = keys.to(images.device, torch.int64)
    span = full - size + 1
    if random_crop and span > 1:
        oy = _hash(keys, seed * 3 + 1) % span
        ox = _hash(keys, seed * 3 + 2) % span
    else:
        oy = ox = torch.full_like(keys, (full - size) // 2)
    ar = torch.arange(size, device=images.device)
    rows = oy[:, None] + ar  # (B, size)
    cols = ox[:, None] + ar  # (B, size)
    if hflip:
        flip = (_hash(keys, seed * 3 + 3) & 1).bool()[:, None]
        cols = torch.where(flip, cols.flip(1), cols)
    bi = torch.arange(b, device=images.device)[:, None, None, None]
    ci = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
    out = images[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]  # (B, C, size, size)
    return out.float().div_(127.5).sub_(1.0)
