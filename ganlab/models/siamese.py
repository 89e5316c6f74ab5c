"""Siamese pair discriminator.

Bromley et al., "Signature Verification using a Siamese Time Delay Neural Network", NIPS 1993;
Koch et al., "Siamese Neural Networks for One-shot Image Recognition", ICML DL workshop 2015.
Two convolutional branches embed the two images, the embeddings are concatenated and an MLP
scores how similar the pair is. Used as a GAN critic, D learns that (real, real) pairs are
similar and (real, fake) pairs are not; G learns to make its images indistinguishable.
"""

from __future__ import annotations

import torch
from torch import nn

from ganlab.models.base import Discriminator
from ganlab.models.dcgan import DCGANDiscriminator, apply_spectral_norm_, dcgan_init_


class SiameseDiscriminator(Discriminator):
    """(a, b): two images (B, C, s, s) -> similarity logit (B,); positive means "same kind".

    ``shared_weights=True`` uses one branch for both inputs (a true Siamese net, symmetric in
    its features); ``False`` gives each input its own branch. Branches are DCGAN D trunks and
    take the same options (dropout, norm, spectral_norm, attention_res).
    """

    pairwise = True

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 3,
        ndf: int = 64,
        kernel_size: int = 4,
        dropout: float = 0.0,
        shared_weights: bool = True,
        hidden: int = 256,
        norm: str = "batch",
        spectral_norm: bool = False,
        attention_res: int | None = None,
        num_classes: int = 0,
        projection: bool = True,
        aux_classifier: bool = False,
    ) -> None:
        super().__init__()
        if num_classes:
            raise ValueError(
                "the Siamese pair discriminator has no class-conditional form: set data.conditional=false"
            )
        branch = dict(
            image_size=image_size,
            channels=channels,
            ndf=ndf,
            kernel_size=kernel_size,
            dropout=dropout,
            norm=norm,
            spectral_norm=spectral_norm,
            attention_res=attention_res,
        )
        branch_a = DCGANDiscriminator(**branch)
        self.branch_a = branch_a.trunk
        self.branch_b = branch_a.trunk if shared_weights else DCGANDiscriminator(**branch).trunk
        self.shared_weights = shared_weights
        feat = branch_a.feature_dim
        self.mlp = nn.Sequential(  # (B, 2F) -> (B, 1)
            nn.Linear(2 * feat, hidden),
            nn.LeakyReLU(0.2, True),
            nn.Linear(hidden, 1),
        )
        dcgan_init_(self.mlp)
        if spectral_norm:
            apply_spectral_norm_(self.mlp)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        fa = self.branch_a(a).flatten(1)  # (B, F)
        fb = self.branch_b(b).flatten(1)  # (B, F)
        return self.mlp(torch.cat([fa, fb], dim=1)).flatten()
