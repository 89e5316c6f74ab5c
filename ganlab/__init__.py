"""ganlab: GAN training and evaluation on PyTorch Lightning + Hydra."""

__version__ = "0.1.0"
