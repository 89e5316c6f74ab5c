"""``data=cifar10``: CIFAR-10 from its python pickles."""

from __future__ import annotations

from ganlab.data.base import GANDataModule
from ganlab.data.datasets import CIFAR10_CLASSES, ArrayImages, read_cifar10, require_dir


class CIFAR10DataModule(GANDataModule):
    """CIFAR-10 (Krizhevsky 2009) from the python pickles, optionally only some ``classes``
    (e.g. ``[cat, dog]``). 32x32 natively."""

    def __init__(self, root: str, classes: list[str] | None = None, train: bool = True, **kwargs) -> None:
        super().__init__(root, **kwargs)
        self.classes = list(classes) if classes else None
        self.train = train

    def download_data(self) -> None:
        if self.download and not (self.root / "cifar-10-batches-py").is_dir():
            from torchvision.datasets import CIFAR10

            CIFAR10(str(self.root), train=self.train, download=True)

    def extra_fingerprint(self) -> dict:
        return {"classes": self.classes, "train": self.train}

    def build_dataset(self, transform):
        require_dir(
            self.root,
            self.how_to_get
            or "Set data.root to the folder holding cifar-10-batches-py, or data.download=true when online.",
        )
        images, labels = read_cifar10(self.root, self.classes, self.train)
        return ArrayImages(images, self.channels, transform, labels, self.class_names())

    def class_names(self) -> list[str]:
        return self.classes or list(CIFAR10_CLASSES)
