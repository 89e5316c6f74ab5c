"""StyleGAN2-ADA in plain PyTorch: ``StyleGAN2Generator``, ``StyleGAN2Discriminator`` and
``load_network_pkl``, a reader of the official network pickles that runs none of their code.

Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020; Karras et al.,
"Training Generative Adversarial Networks with Limited Data", NeurIPS 2020. An independent
implementation of the networks of NVlabs/stylegan2-ada-pytorch (no custom CUDA plugin; nothing
compiled) that keeps the official constructor arguments and parameter names: an official
``state_dict`` loads with ``strict=True``, and the outputs match the official ones.

  ops.py            FIR resampling, resampling and modulated convolutions, bias + activation
  layers.py         equalised-lr dense and conv layers, the mapping network
  synthesis.py      the synthesis layers, blocks and network
  discriminator.py  the discriminator blocks, minibatch std, the epilogue
  networks.py       the two networks, with ganlab's attributes
  network_pkl.py    the safe reader of official snapshot pickles
"""

from ganlab.models.stylegan2.network_pkl import load_network_pkl
from ganlab.models.stylegan2.networks import StyleGAN2Discriminator, StyleGAN2Generator

__all__ = ["StyleGAN2Discriminator", "StyleGAN2Generator", "load_network_pkl"]
