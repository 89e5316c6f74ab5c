"""LightningDataModules: one base with the shared transform and loader, one subclass per layout.

Transform (PIL -> tensor): optional centre crop -> resize (shorter side to ``load_size``) ->
random or centre crop to ``image_size`` -> optional horizontal flip -> [-1, 1].
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision import transforms as T

from ganlab.data.cache import CachedImages, Keys, augment_batch, build_or_load, cache_path, collate_keys
from ganlab.data.datasets import WithLabels
from ganlab.data.loader import ResumableLoader, ignore_stop_signals
from ganlab.utils.errors import DatasetError, bad_setting
from ganlab.utils.forking import settle
from ganlab.utils.images import to_uint8


class GANDataModule(L.LightningDataModule):
    """Base: subclasses implement ``build_dataset()``; everything else is shared.

    ``load_size``: shorter side after resizing (default ``image_size``); with
    ``random_crop=True`` set it larger (e.g. 72 for 64 px) so the crop has room to move.
    ``how_to_get``: appended to "dataset not found" errors.
    ``cache`` / ``device_resident``: see ``ganlab.data.cache`` (decode once; keep on the GPU).
    ``batches_per_iteration``: minibatches of ``batch_size`` per training batch (set by
    ``ganlab.train`` from ``model.d_steps_per_g``: each D update takes a fresh real minibatch).
    ``skip_bad_images``: image-file layouts leave unreadable files out (with a warning) instead
    of stopping at start with the list of them.
    ``conditional``: batches are (images (B, C, H, W), labels (B,) int64) instead of images, in
    every mode (files, cache, device-resident); ``class_names()`` names the labels.
    ``holdout``: real images held back from training and never shown to D's updates, for the
    training doctor's overfitting signal r_v (Karras et al. 2020, sec. 2): ``auto`` (see
    ``holdout_size``), a number, or 0. The same images on every rank and across resumes.
    """

    def __init__(
        self,
        root: str,
        image_size: int = 64,
        channels: int = 3,
        batch_size: int = 128,
        num_workers: int = 2,
        load_size: int | None = None,
        center_crop: int | None = None,
        random_crop: bool = False,
        hflip: bool = False,
        seed: int = 0,
        pin_memory: bool = True,
        download: bool = False,
        how_to_get: str = "",
        cache: bool = False,
        cache_dir: str | None = None,
        device_resident: bool = False,
        batches_per_iteration: int = 1,
        skip_bad_images: bool = False,
        conditional: bool = False,
        max_images: int | None = None,
        holdout: int | str = "auto",
    ) -> None:
        super().__init__()
        self.conditional = conditional
        if holdout != "auto" and (isinstance(holdout, bool) or not isinstance(holdout, int) or holdout < 0):
            what = "the held-out image count must be auto, 0 or a whole number"
            raise bad_setting(what, "data.holdout", holdout, "data.holdout=256")
        self.holdout = holdout
        if max_images is not None and (
            isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1
        ):
            what = "the image limit must be a whole number >= 1, or null"
            raise bad_setting(what, "data.max_images", max_images, "data.max_images=2000")
        self.max_images = max_images
        self.labels: np.ndarray | None = None  # (N,) int64 of the training set, when conditional
        self._labels_on_device: torch.Tensor | None = None
        if not isinstance(batch_size, int) or batch_size < 1:
            raise bad_setting("the batch size must be a whole number >= 1", "data.batch_size", batch_size,
                              "data.batch_size=64")  # fmt: skip
        if int(batches_per_iteration) < 1:
            raise ValueError(f"batches_per_iteration must be >= 1, got {batches_per_iteration}")
        self.batches_per_iteration = int(batches_per_iteration)
        self.skip_bad_images = skip_bad_images
        self.root = Path(root).expanduser()
        self.image_size, self.channels = image_size, channels
        self.batch_size, self.num_workers = batch_size, num_workers
        self.load_size = load_size or image_size
        if self.load_size < image_size:
            raise ValueError(f"data.load_size ({self.load_size}) must be >= data.image_size ({image_size})")
        self.center_crop, self.random_crop, self.hflip = center_crop, random_crop, hflip
        self.seed, self.pin_memory, self.download = seed, pin_memory, download
        self.how_to_get = how_to_get
        if device_resident and not cache:
            raise ValueError("data.device_resident=true needs data.cache=true (the decoded uint8 array)")
        self.cache, self.cache_dir, self.device_resident = cache, cache_dir, device_resident
        self.train_set = None
        self._resident: torch.Tensor | None = None

    def transform(self, augment: bool = True, size: int | None = None) -> T.Compose:
        """``augment=False``: the deterministic view (centre crop, no flip), for FID statistics
        and the image cache; ``size``: final crop (default ``image_size``)."""
        size = size or self.image_size
        ops: list = []
        if self.center_crop:
            ops.append(T.CenterCrop(self.center_crop))
        ops.append(T.Resize(self.load_size, interpolation=T.InterpolationMode.BICUBIC, antialias=True))
        ops.append(
            T.RandomCrop(self.image_size) if augment and self.random_crop else T.CenterCrop(self.image_size)
        )
        if augment and self.hflip:
            ops.append(T.RandomHorizontalFlip())
        ops += [T.ToTensor(), T.Normalize([0.5] * self.channels, [0.5] * self.channels)]  # [0,1] -> [-1,1]
        return T.Compose(ops)

    def build_dataset(self, transform):
        """The dataset of this layout, images through ``transform``, with ``labels`` and
        ``class_names`` attributes (None where the layout has none); subclasses implement it."""
        raise NotImplementedError

    def _dataset(self, transform):
        """``build_dataset``, cut to ``max_images`` images (a small-data experiment), without the
        held-out images."""
        return self._parts(transform)["train"]

    def _parts(self, transform) -> dict[str, Dataset]:
        """``build_dataset`` once, split (``split``) into ``train`` and ``holdout`` subsets."""
        dataset = self.build_dataset(transform)
        train, held = split(len(dataset), self.max_images, self.holdout)
        return {
            part: dataset if len(index) == len(dataset) else SubsetImages(dataset, index)
            for part, index in (("train", train), ("holdout", held))
        }

    def probe_sets(self, n: int) -> dict[str, torch.Tensor | None]:
        """The training doctor's fixed probes, deterministic view in [-1, 1]: ``train`` (n,
        C, H, W), the first n training images, and ``holdout``, up to n held-out ones (None
        without held-out images), with ``train_labels``/``holdout_labels`` (n,) when
        conditional."""
        out: dict[str, torch.Tensor | None] = {}
        for part, dataset in self._parts(self.transform(augment=False)).items():
            m = min(n, len(dataset))
            if m == 0:  # no held-out images
                out[part] = out[f"{part}_labels"] = None
                continue
            out[part] = torch.stack([dataset[i] for i in range(m)])
            labels = self._labels_of(dataset)[:m] if self.conditional else None
            out[f"{part}_labels"] = None if labels is None else torch.as_tensor(labels, dtype=torch.int64)
        return out

    def class_names(self) -> list[str]:
        """The classes' names, label i named ``class_names()[i]``; cheap (no images read), so
        that ``ganlab.train`` can size the conditional networks before the data is set up."""
        raise DatasetError(f"{type(self).__name__} has no class labels: set data.conditional=false")

    def _labels_of(self, dataset) -> np.ndarray:
        labels = dataset.labels
        if labels is None:
            raise DatasetError(
                f"{type(self).__name__} at '{self.root}' has no labels: set data.conditional=false"
            )
        if dataset.class_names != self.class_names():
            raise DatasetError(f"labels name {dataset.class_names}, expected {self.class_names()}")
        return labels

    def folder_checks(self) -> dict:
        """``ImageFolder``'s start-up checks: skip or stop on bad files, warn below the size the
        transform needs (the centre crop, else the resize), cache the scan beside the images'."""
        return {
            "skip_bad": self.skip_bad_images,
            "min_side": self.center_crop or self.load_size,
            "scan_cache": Path(self.cache_dir or self.root / ".ganlab_cache") / "scan",
        }

    def fingerprint(self) -> dict:
        """What identifies the real images FID compares against (keys the statistics cache)."""
        self.setup()
        return self._describe(self.train_set)

    def _describe(self, dataset) -> dict:
        return {
            "data": type(self).__name__,
            "root": str(self.root.resolve()),
            "n_images": len(dataset),
            "image_size": self.image_size,
            "channels": self.channels,
            "load_size": self.load_size,
            "center_crop": self.center_crop,
            **self.extra_fingerprint(),
        }

    def extra_fingerprint(self) -> dict:
        return {}

    def real_batches(self, batch_size: int = 200, label: int | None = None):
        """uint8 (B, C, H, W) batches of the un-augmented training images, in file order; only
        class ``label``'s with a label (intra-class FID)."""
        dataset = self._dataset(self.transform(augment=False))
        if label is not None:
            dataset = Subset(dataset, np.flatnonzero(self._labels_of(dataset) == label).tolist())
        if self.num_workers:
            settle()  # the workers fork: no W&B run may be starting in another thread then
        loader = DataLoader(
            dataset,
            batch_size=batch_size,
            num_workers=self.num_workers,
            shuffle=False,
            worker_init_fn=ignore_stop_signals,
        )
        for batch in loader:
            yield to_uint8(batch)

    def download_data(self) -> None:
        """Fetch the dataset when ``download=true`` and it is missing (layouts that can)."""

    def prepare_data(self) -> None:
        """Lightning runs this on one process per node, then lets the others go on: downloads
        and the image cache are built once, not by every rank at the same time."""
        self.download_data()
        if self.cache:
            self._cached_view()

    def _cached_view(self):
        """The deterministic view at ``load_size`` and its uint8 cache (built when missing);
        sets ``labels`` when conditional (labels are not cached: the formats read them fast)."""
        view = self._dataset(self.transform(augment=False, size=self.load_size))
        self._check_size(view)
        if self.conditional:
            self.labels = self._labels_of(view)
        self.cache_file = cache_path(self.cache_dir or self.root / ".ganlab_cache", self._describe(view))
        return build_or_load(self.cache_file, view)  # uint8 (N, C, L, L), memory-mapped

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            if self.cache:
                self.images = self._cached_view()
                self.train_set = Keys(len(self.images)) if self.device_resident else CachedImages(self.images)
            else:
                dataset = self._dataset(self.transform())
                if self.conditional:
                    self.labels = self._labels_of(dataset)
                    dataset = WithLabels(dataset, self.labels)
                self.train_set = dataset

    def _check_size(self, dataset) -> None:
        need = self.batch_size * self.batches_per_iteration
        if len(dataset) < need:
            per = (
                f" x model.d_steps_per_g={self.batches_per_iteration}"
                if self.batches_per_iteration > 1
                else ""
            )
            raise DatasetError(
                f"dataset at '{self.root}' has {len(dataset)} images, fewer than one batch of "
                f"{need} (data.batch_size={self.batch_size}{per}); lower data.batch_size or add images"
            )

    def train_dataloader(self) -> ResumableLoader:
        self._check_size(self.train_set)  # training only: evaluation reads sets smaller than a batch
        resident = self.cache and self.device_resident
        return ResumableLoader(
            self.train_set,
            seeded=not self.cache,  # cached modes augment on the device from hashed keys
            batch_size=self.batch_size * self.batches_per_iteration,
            shuffle=True,
            seed=self.seed,
            num_workers=0 if resident else self.num_workers,
            pin_memory=self.pin_memory and torch.cuda.is_available() and not resident,
            drop_last=True,  # BatchNorm and the fixed per-step cost prefer full batches
            persistent_workers=self.num_workers > 0 and not resident,
            **({"collate_fn": collate_keys} if resident else {}),
        )

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """Cached modes: the batch is uint8 images and keys (or keys alone, images resident on
        the device); crop, flip and scale to [-1, 1] happen here, batched on the device."""
        if not self.cache:
            return batch
        if self.device_resident:
            keys = batch
            if self._resident is None or self._resident.device != keys.device:
                # a copy: the cache is a read-only memory map, which torch would share (and warn about)
                self._resident = torch.from_numpy(np.array(self.images, copy=True)).to(keys.device)
            images = self._resident.index_select(0, keys % self._resident.shape[0])
        else:
            images, keys = batch
        images = augment_batch(images, keys, self.image_size, self.random_crop, self.hflip, self.seed)
        if not self.conditional:
            return images
        if self._labels_on_device is None or self._labels_on_device.device != keys.device:
            self._labels_on_device = torch.from_numpy(self.labels).to(keys.device)
        return images, self._labels_on_device.index_select(0, keys.to(torch.int64) % len(self.labels))


def holdout_size(n_images: int, spare: int) -> int:
    """``data.holdout=auto``: up to 256 of the images ``max_images`` leaves out (``spare``), so that
    a small-data run keeps its ``max_images`` training images; else 5% of the set, at least 16 and
    at most 256 images (sets under 160 images hold none back)."""
    if spare >= 16:
        return min(256, spare)
    return 0 if n_images < 160 else min(256, max(16, n_images // 20))


SPLIT_SEED = 0  # one fixed permutation: the same subsets for every run, seed and rank


def split(n: int, max_images: int | None, holdout: int | str) -> tuple[list[int], list[int]]:
    """(training indices, held-out indices) of a set of ``n`` items, each sorted. Both come from
    one permutation with a fixed seed (as Karras et al. 2020 subsample; not the first items:
    folder layouts are sorted by class): training images from its front (``max_images`` of them,
    the subset ganlab has always drawn), held-out ones from its back, never the same image."""
    keep = min(max_images or n, n)
    spare = n - keep
    h = holdout_size(keep, spare) if holdout == "auto" else min(int(holdout), n - 1)
    if h == 0 and keep == n:
        return list(range(n)), []
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    held = perm[n - h :] if h else perm[:0]
    train = perm[: min(keep, n - h)]
    return train.sort().values.tolist(), held.sort().values.tolist()


class SubsetImages(Dataset):
    """The items ``index`` of a dataset (``split``), in the dataset's order; ``labels`` and
    ``class_names`` cut alike."""

    def __init__(self, base: Dataset, index: list[int]) -> None:
        self.base, self.index = base, list(index)
        labels = base.labels  # build_dataset's contract: an array or None
        self.labels = np.asarray(labels)[self.index] if labels is not None else None
        self.class_names = base.class_names

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int):
        return self.base[self.index[i]]
