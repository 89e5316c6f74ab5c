"""Datasets and LightningDataModules. All yield image tensors (C, H, W) scaled to [-1, 1].

A new dataset layout is one file here (a ``GANDataModule`` subclass, see ``base.py``) plus one
``conf/data/<name>.yaml`` naming it by its module path; the names below are re-exported for scripts.
"""

from ganlab.data.base import GANDataModule
from ganlab.data.celeba import CelebADataModule
from ganlab.data.cifar10 import CIFAR10DataModule
from ganlab.data.image_folder import ImageFolderDataModule
from ganlab.data.mnist import MNISTDataModule
from ganlab.utils.errors import DatasetError

__all__ = [
    "CIFAR10DataModule",
    "CelebADataModule",
    "DatasetError",
    "GANDataModule",
    "ImageFolderDataModule",
    "MNISTDataModule",
]
