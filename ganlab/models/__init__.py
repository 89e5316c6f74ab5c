"""Pure ``nn.Module`` networks: no Lightning, no config."""

from ganlab.models.base import Discriminator, Generator
from ganlab.models.dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_init_
from ganlab.models.resnet import ResNetDiscriminator, ResNetGenerator
from ganlab.models.siamese import SiameseDiscriminator
from ganlab.models.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator  # noqa: F401  (exported)

__all__ = [
    "Discriminator",
    "Generator",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "ResNetDiscriminator",
    "ResNetGenerator",
    "SiameseDiscriminator",
    "dcgan_init_",
]
