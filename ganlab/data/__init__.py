"""Datasets and LightningDataModules. All yield image tensors (C, H, W) scaled to [-1, 1]."""

from ganlab.data.datamodules import (
    CelebADataModule,
    CIFAR10DataModule,
    GANDataModule,
    ImageFolderDataModule,
    MNISTDataModule,
)
from ganlab.data.datasets import DatasetError

__all__ = [
    "CIFAR10DataModule",
    "CelebADataModule",
    "DatasetError",
    "GANDataModule",
    "ImageFolderDataModule",
    "MNISTDataModule",
]
