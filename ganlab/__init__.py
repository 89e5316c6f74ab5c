"""ganlab: GAN training and evaluation on PyTorch Lightning + Hydra."""

__version__ = "0.3.0"
