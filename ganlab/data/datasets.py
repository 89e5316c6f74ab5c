"""On-disk datasets in their standard layouts, with errors that name the file and the fix."""

from __future__ import annotations

import gzip
import pickle
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class DatasetError(RuntimeError):
    """A dataset is missing, empty or unreadable; the message says what to do."""


def require_dir(path: Path, how_to_get: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DatasetError(f"dataset directory not found: '{path}'. {how_to_get}")
    return path


def to_mode(img: Image.Image, channels: int) -> Image.Image:
    """Convert to 'L' or 'RGB'. Transparent pixels (emoji PNGs are RGBA) are composited on
    white: plain ``convert('RGB')`` would expose whatever colour the transparent pixels hold."""
    if img.mode in ("RGBA", "LA", "P"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    return img.convert("L" if channels == 1 else "RGB")


class ImageFolder(Dataset):
    """Every image file below ``root`` (any depth), sorted by path. Labels are not used."""

    def __init__(self, root: str | Path, channels: int, transform: Callable, how_to_get: str = "") -> None:
        self.root = require_dir(Path(root), how_to_get)
        self.files = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not self.files:
            raise DatasetError(
                f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under '{self.root}'. "
                f"Point data.root at a folder of images. {how_to_get}"
            )
        self.channels, self.transform = channels, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        path = self.files[i]
        try:
            with Image.open(path) as img:
                img.load()
                img = to_mode(img, self.channels)
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
            raise DatasetError(
                f"corrupt or unreadable image file '{path}' ({type(e).__name__}: {e}). "
                "Delete or replace the file and rerun."
            ) from e
        return self.transform(img)


class ArrayImages(Dataset):
    """uint8 images (N, H, W) or (N, H, W, 3) held in memory (MNIST idx files, CIFAR pickles)."""

    def __init__(self, images: np.ndarray, channels: int, transform: Callable) -> None:
        self.images, self.channels, self.transform = images, channels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.transform(to_mode(Image.fromarray(self.images[i]), self.channels))


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (LeCun's MNIST format; gzip allowed): big-endian magic 0x0000 08 NDIM."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
        zero, dtype, ndim = struct.unpack(">HBB", data[:4])
        if zero != 0 or dtype != 0x08:
            raise ValueError(f"bad magic {data[:4].hex()} (expected 000008xx, unsigned bytes)")
        shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
        arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
        return arr.reshape(shape)
    except (OSError, EOFError, ValueError, struct.error) as e:
        raise DatasetError(f"corrupt IDX file '{path}' ({e}). Delete it and fetch it again.") from e


def find_idx_images(root: Path, split: str) -> Path | None:
    """Locate ``{train,t10k}-images-idx3-ubyte[.gz]`` in root, root/raw or torchvision's
    root/{MNIST,FashionMNIST}/raw layout."""
    prefix = "train" if split == "train" else "t10k"
    for d in (root, root / "raw", root / "FashionMNIST" / "raw", root / "MNIST" / "raw"):
        for name in (f"{prefix}-images-idx3-ubyte", f"{prefix}-images-idx3-ubyte.gz"):
            if (d / name).is_file():
                return d / name
    return None


CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def read_cifar10(root: Path, classes: list[str] | None, train: bool = True) -> np.ndarray:
    """CIFAR-10 python pickles (``cifar-10-batches-py/data_batch_1..5``, ``test_batch``) ->
    uint8 (N, 32, 32, 3), keeping only ``classes`` (names) when given."""
    base = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    missing = [n for n in names if not (base / n).is_file()]
    if missing:
        raise DatasetError(
            f"CIFAR-10 files {missing} not found in '{base}'. Download and extract "
            "cifar-10-python.tar.gz there, or set data.download=true when online."
        )
    keep = None
    if classes:
        unknown = [c for c in classes if c not in CIFAR10_CLASSES]
        if unknown:
            raise DatasetError(f"unknown CIFAR-10 classes {unknown}; choose from {list(CIFAR10_CLASSES)}")
        keep = [CIFAR10_CLASSES.index(c) for c in classes]
    chunks = []
    for n in names:
        try:
            with open(base / n, "rb") as f:
                entry = pickle.load(f, encoding="latin1")
            data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            labels = np.asarray(entry["labels"])
        except (OSError, EOFError, KeyError, ValueError, pickle.UnpicklingError) as e:
            raise DatasetError(f"corrupt CIFAR-10 file '{base / n}' ({e}). Download it again.") from e
        if keep is not None:
            data = data[np.isin(labels, keep)]
        chunks.append(data)
    return np.concatenate(chunks).transpose(0, 2, 3, 1).copy()  # (N, 32, 32, 3)
