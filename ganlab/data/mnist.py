"""``data=mnist`` and ``data=fashion_mnist``: the IDX files of MNIST and Fashion-MNIST."""

from __future__ import annotations

import numpy as np

from ganlab.data.base import GANDataModule
from ganlab.data.datasets import (
    FASHION_MNIST_CLASSES,
    MNIST_CLASSES,
    ArrayImages,
    find_idx_images,
    read_idx,
    require_dir,
    select_classes,
)
from ganlab.utils.errors import DatasetError


class MNISTDataModule(GANDataModule):
    """MNIST / Fashion-MNIST IDX files (``train-images-idx3-ubyte[.gz]``) in ``root``,
    ``root/raw`` or torchvision's layout. 28x28 grey, resized to ``image_size`` (32 for DCGAN).
    ``variant`` picks torchvision's downloader: ``mnist`` or ``fashion_mnist``."""

    def __init__(
        self,
        root: str,
        variant: str = "fashion_mnist",
        train: bool = True,
        classes: list[str] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(root, **kwargs)
        if variant not in ("mnist", "fashion_mnist"):
            raise ValueError(f"data.variant must be 'mnist' or 'fashion_mnist', got {variant!r}")
        self.variant, self.train = variant, train
        self.classes = [str(c) for c in classes] if classes else None  # names, e.g. [sneaker, bag] or [3, 8]
        self.all_classes = list(FASHION_MNIST_CLASSES if variant == "fashion_mnist" else MNIST_CLASSES)

    def class_names(self) -> list[str]:
        return self.classes or self.all_classes

    def download_data(self) -> None:
        if self.download and find_idx_images(self.root, "train" if self.train else "test") is None:
            from torchvision import datasets

            cls = datasets.FashionMNIST if self.variant == "fashion_mnist" else datasets.MNIST
            cls(str(self.root), train=self.train, download=True)

    def extra_fingerprint(self) -> dict:
        return {
            "variant": self.variant,
            "train": self.train,
            **({"classes": self.classes} if self.classes else {}),
        }

    def build_dataset(self, transform):
        require_dir(self.root, self.how_to_get)
        path = find_idx_images(self.root, "train" if self.train else "test")
        if path is None:
            raise DatasetError(
                f"no {'train' if self.train else 't10k'}-images-idx3-ubyte[.gz] under '{self.root}'. "
                f"{self.how_to_get}"
            )
        images = read_idx(path)
        if images.ndim != 3:
            raise DatasetError(f"'{path}' holds shape {images.shape}, expected (N, H, W) images")
        labels = None
        if self.conditional or self.classes:
            split = "train" if self.train else "test"
            label_path = find_idx_images(self.root, split, kind="labels-idx1")
            if label_path is None:
                raise DatasetError(
                    f"no {'train' if self.train else 't10k'}-labels-idx1-ubyte[.gz] beside '{path}': "
                    f"class labels need it. {self.how_to_get}"
                )
            labels = read_idx(label_path).astype(np.int64)
            if labels.shape != images.shape[:1]:
                raise DatasetError(f"'{label_path}' holds {labels.shape[0]} labels for {len(images)} images")
            keep, labels, _ = select_classes(labels, self.all_classes, self.classes, self.variant)
            images = images[keep]
        return ArrayImages(np.ascontiguousarray(images), self.channels, transform, labels, self.class_names())
