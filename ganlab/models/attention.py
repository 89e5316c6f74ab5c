"""Self-attention block (Zhang et al., "Self-Attention Generative Adversarial Networks", ICML 2019).

x (B, C, H, W) -> x + gamma * o(softmax(q^T k) v): every position attends to every other, so
G and D can model long-range structure that convolutions reach only through depth. gamma
starts at 0, so the block is the identity at initialisation and its use is learned.
Keys and values are max-pooled 2x2 (as in BigGAN) to cut the HW x HW attention by 4.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class SelfAttention(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels < 8:
            raise ValueError(f"self-attention needs >= 8 channels, got {channels}")
        self.q = nn.Conv2d(channels, channels // 8, 1, bias=False)
        self.k = nn.Conv2d(channels, channels // 8, 1, bias=False)
        self.v = nn.Conv2d(channels, channels // 2, 1, bias=False)
        self.o = nn.Conv2d(channels // 2, channels, 1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        q = self.q(x).flatten(2)  # (B, C/8, HW)
        k = self.pool(self.k(x)).flatten(2)  # (B, C/8, HW/4)
        v = self.pool(self.v(x)).flatten(2)  # (B, C/2, HW/4)
        attn = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # (B, HW, HW/4): rows sum to 1
        out = (v @ attn.transpose(1, 2)).view(b, c // 2, h, w)  # (B, C/2, H, W)
        return x + self.gamma * self.o(out)
