"""``data=celeba64``: CelebA's aligned faces in torchvision's layout."""

from __future__ import annotations

from pathlib import Path

from ganlab.data.base import GANDataModule
from ganlab.data.datasets import ImageFolder, require_dir


class CelebADataModule(GANDataModule):
    """CelebA aligned & cropped faces (Liu et al., ICCV 2015), 178x218 JPEGs.

    ``root`` may be torchvision's ``<root>/celeba`` (holding ``img_align_celeba/``) or the
    ``img_align_celeba`` folder itself. The standard 64 px preprocessing centre-crops the face
    (``center_crop``, 140 px by default as in many PyTorch GAN repos; 108 in carpedm20's
    DCGAN-tensorflow) and then resizes. ``download=true`` uses torchvision (Google Drive; it is
    often rate limited, so a manual download is the reliable path).
    """

    def __init__(self, root: str, center_crop: int | None = 140, **kwargs) -> None:
        super().__init__(root, center_crop=center_crop, **kwargs)

    def image_dir(self) -> Path:
        for d in (self.root / "img_align_celeba", self.root / "celeba" / "img_align_celeba", self.root):
            if d.is_dir() and any(d.glob("*.jpg")):
                return d
        return self.root / "img_align_celeba"

    def download_data(self) -> None:
        if self.download and not self.image_dir().is_dir():
            from torchvision.datasets import CelebA

            CelebA(
                str(self.root.parent if self.root.name == "celeba" else self.root), split="all", download=True
            )

    def build_dataset(self, transform):
        hint = self.how_to_get or (
            "Download img_align_celeba.zip from the CelebA site and unzip it there, "
            "or set data.download=true when online."
        )
        return ImageFolder(
            require_dir(self.image_dir(), hint), self.channels, transform, hint, **self.folder_checks()
        )
