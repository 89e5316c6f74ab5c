"""On-disk datasets in their standard layouts, with errors that name the file and the fix."""

from __future__ import annotations

import gzip
import logging
import pickle
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ganlab.data.scan import scan
from ganlab.utils.errors import DatasetError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def require_dir(path: Path, how_to_get: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DatasetError(f"dataset directory not found: '{path}' (data.root): {how_to_get}")
    return path


def to_mode(img: Image.Image, channels: int) -> Image.Image:
    """Convert to 'L' or 'RGB'. Transparent pixels (emoji PNGs are RGBA) are composited on
    white: plain ``convert('RGB')`` would expose whatever colour the transparent pixels hold.
    16-bit grey images (PIL modes I;16 and I) are scaled to 8 bits: PIL's own conversion clips
    every value above 255 to white."""
    if img.mode.startswith("I"):
        a = np.asarray(img, dtype=np.float64)
        full = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        img = Image.fromarray(np.clip(np.rint(a * (255.0 / full)), 0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "P"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    return img.convert("L" if channels == 1 else "RGB")


def folder_classes(root: Path, classes: list[str] | None = None) -> list[str]:
    """The class names of an image tree: its first-level sub-folders, sorted, or ``classes``
    (which must all exist there) in the order given."""
    found = sorted(p.name for p in Path(root).iterdir() if p.is_dir() and not p.name.startswith("."))
    if classes is None:
        if not found:
            raise DatasetError(
                f"'{root}' has no sub-folders: a conditional run needs one folder per class "
                "(root/<class>/<images>), or set data.conditional=false"
            )
        return found
    missing = [c for c in classes if c not in found]
    if missing:
        raise DatasetError(f"data.classes {missing} are not folders of '{root}'; its folders: {found}")
    return list(classes)


def select_classes(labels: np.ndarray, names: list[str], classes: list[str] | None, what: str):
    """Keep the samples of ``classes`` (names; all when None): (indices kept, labels remapped to
    0..len(classes)-1 in the order given, the kept names)."""
    if classes is None:
        return np.arange(len(labels)), labels.astype(np.int64), list(names)
    unknown = [c for c in classes if c not in names]
    if unknown:
        raise DatasetError(f"unknown {what} classes {unknown}; choose from {list(names)}")
    old = [names.index(c) for c in classes]
    keep = np.flatnonzero(np.isin(labels, old))
    remap = np.full(len(names), -1, np.int64)
    remap[old] = np.arange(len(old))
    return keep, remap[labels[keep]], list(classes)


class WithLabels(Dataset):
    """i -> (item i, label i): the (image, label) pairs of conditional training."""

    def __init__(self, base: Dataset, labels: np.ndarray) -> None:
        self.base, self.labels = base, labels

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        return self.base[i], int(self.labels[i])


class ImageFolder(Dataset):
    """Every image file below ``root`` (any depth), sorted by path.

    ``labelled``: the first-level sub-folder of each file is its class (``class_names``, sorted,
    or ``classes`` in that order, which also leaves the other folders out); ``labels`` (N,)
    int64. Unlabelled, ``classes`` still selects those sub-folders.

    Every file is checked when the dataset is made (``ganlab.data.scan``, cached in
    ``scan_cache``): unusable files are all named at once, before training, or left out with
    ``skip_bad``; images with a side shorter than ``min_side`` (they will be upscaled) are
    counted in a warning."""

    def __init__(
        self,
        root: str | Path,
        channels: int,
        transform: Callable,
        how_to_get: str = "",
        skip_bad: bool = False,
        min_side: int | None = None,
        scan_cache: str | Path | None = None,
        labelled: bool = False,
        classes: list[str] | None = None,
    ) -> None:
        self.root = require_dir(Path(root), how_to_get)
        self.files = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        self.labels: np.ndarray | None = None
        self.class_names: list[str] | None = None
        if labelled or classes:
            self.class_names = folder_classes(self.root, list(classes) if classes else None)
            wanted = set(self.class_names)
            top = [p.relative_to(self.root).parts for p in self.files]
            loose = [p for p, parts in zip(self.files, top) if len(parts) == 1]
            if loose and labelled:
                raise DatasetError(
                    f"{len(loose)} image(s) directly in '{self.root}' (e.g. '{loose[0].name}') belong to no "
                    "class folder: move them into root/<class>/, or set data.conditional=false"
                )
            self.files = [p for p, parts in zip(self.files, top) if len(parts) > 1 and parts[0] in wanted]
        if not self.files:
            raise DatasetError(
                f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under '{self.root}'. "
                f"Point data.root at a folder of images. {how_to_get}"
            )
        self.channels, self.transform = channels, transform
        found = scan(self.files, scan_cache)
        if found.bad:
            self.files = self._without_bad(found.bad, skip_bad)
        if self.class_names is not None:
            index = {name: i for i, name in enumerate(self.class_names)}
            self.labels = np.array([index[p.relative_to(self.root).parts[0]] for p in self.files], np.int64)
        if min_side:
            small = sum(
                1 for p in self.files if min(found.sizes.get(str(p), (min_side, min_side))) < min_side
            )
            if small:
                log.warning(
                    "%d of %d images under '%s' are smaller than %d px on a side and will be upscaled",
                    small, len(self.files), self.root, min_side,
                )  # fmt: skip

    def _without_bad(self, bad: dict[str, str], skip_bad: bool) -> list[Path]:
        """The files without the unreadable ones (named in a warning) with ``skip_bad``; else one
        error naming them all."""
        shown = "\n  ".join(f"{p}: {why}" for p, why in list(bad.items())[:20])
        more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
        if not skip_bad:
            raise DatasetError(
                f"{len(bad)} of {len(self.files)} image files under '{self.root}' cannot be read:\n"
                f"  {shown}{more}\nDelete or replace them, or set data.skip_bad_images=true to train "
                f"on the other {len(self.files) - len(bad)}."
            )
        log.warning("data.skip_bad_images: leaving out %d unreadable file(s):\n  %s%s", len(bad), shown, more)
        return [p for p in self.files if str(p) not in bad]

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
    """uint8 images (N, H, W) or (N, H, W, 3) held in memory (MNIST idx files, CIFAR pickles),
    with their ``labels`` (N,) int64 and ``class_names`` when the format has them."""

    def __init__(
        self,
        images: np.ndarray,
        channels: int,
        transform: Callable,
        labels: np.ndarray | None = None,
        class_names: list[str] | None = None,
    ) -> None:
        self.images, self.channels, self.transform = images, channels, transform
        self.labels, self.class_names = labels, class_names

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


MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_MNIST_CLASSES = (
    "t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot",
)  # fmt: skip


def find_idx_images(root: Path, split: str, kind: str = "images-idx3") -> Path | None:
    """Locate ``{train,t10k}-images-idx3-ubyte[.gz]`` (``kind="labels-idx1"``: the labels) in
    root, root/raw or torchvision's root/{MNIST,FashionMNIST}/raw layout."""
    prefix = "train" if split == "train" else "t10k"
    for d in (root, root / "raw", root / "FashionMNIST" / "raw", root / "MNIST" / "raw"):
        for name in (f"{prefix}-{kind}-ubyte", f"{prefix}-{kind}-ubyte.gz"):
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


def read_cifar10(root: Path, classes: list[str] | None, train: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 python pickles (``cifar-10-batches-py/data_batch_1..5``, ``test_batch``) ->
    (uint8 images (N, 32, 32, 3), int64 labels (N,)), keeping only ``classes`` (names) when
    given, their labels renumbered 0..len(classes)-1 in that order."""
    base = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    missing = [n for n in names if not (base / n).is_file()]
    if missing:
        raise DatasetError(
            f"CIFAR-10 files {missing} not found in '{base}'. Download and extract "
            "cifar-10-python.tar.gz there, or set data.download=true when online."
        )
    chunks, all_labels = [], []
    for n in names:
        try:
            with open(base / n, "rb") as f:
                entry = pickle.load(f, encoding="latin1")
            data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            labels = np.asarray(entry["labels"])
        except (OSError, EOFError, KeyError, ValueError, pickle.UnpicklingError) as e:
            raise DatasetError(f"corrupt CIFAR-10 file '{base / n}' ({e}). Download it again.") from e
        chunks.append(data)
        all_labels.append(labels)
    keep, labels, _ = select_classes(np.concatenate(all_labels), list(CIFAR10_CLASSES), classes, "CIFAR-10")
    return np.concatenate(chunks)[keep].transpose(0, 2, 3, 1).copy(), labels  # (N, 32, 32, 3), (N,)
