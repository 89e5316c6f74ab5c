"""``data=image_folder`` (and its presets emoji64, catfaces64, anime64): any tree of images."""

from __future__ import annotations

from ganlab.data.base import GANDataModule
from ganlab.data.datasets import ImageFolder, folder_classes, require_dir


class ImageFolderDataModule(GANDataModule):
    """Any tree of jpg/png/bmp/webp images (cat faces, anime faces, emoji, your own).

    ``classes``: the first-level sub-folders to train on (the others are left out); with
    ``conditional`` they are the classes, in this order (default: all sub-folders, sorted)."""

    def __init__(self, root: str, classes: list[str] | None = None, **kwargs) -> None:
        super().__init__(root, **kwargs)
        self.classes = list(classes) if classes else None

    def class_names(self) -> list[str]:
        return folder_classes(require_dir(self.root, self.how_to_get), self.classes)

    def extra_fingerprint(self) -> dict:
        return {"classes": self.classes} if self.classes else {}

    def build_dataset(self, transform):
        return ImageFolder(self.root, self.channels, transform, self.how_to_get, **self.folder_checks(),
                           labelled=self.conditional, classes=self.classes)  # fmt: skip
