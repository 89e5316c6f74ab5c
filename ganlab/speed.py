"""How the networks run fast: memory layout (channels_last) and ``torch.compile``."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Speed:
    """``channels_last``: G, D (and G_ema) and the real batch in NHWC (faster cuDNN convolutions).
    ``compile``: ``torch.compile`` G and D in place (``nn.Module.compile``: state-dict keys are
    unchanged, so checkpoints stay interchangeable with eager runs). ``cuda_graph``: replay each
    iteration as one CUDA graph (``ganlab.cuda_graph``)."""

    channels_last: bool = False
    compile: bool = False
    cuda_graph: bool = False

    def prepare(self, G: nn.Module, D: nn.Module, G_ema: nn.Module | None) -> torch.memory_format:
        """Lay out and compile the networks; the memory format the real batch must take."""
        channels_last = self.channels_last
        if (
            self.compile
            and channels_last
            and torch.cuda.is_available()
            and torch.__version__.startswith("2.11")
        ):
            # torch 2.11's inductor failed on these networks in channels_last on an H100 (a
            # fake-kernel stride assertion in convolution_backward): compile in the default layout.
            log.warning("model.compile=true with channels_last fails in torch 2.11; using NCHW")
            channels_last = False
        if channels_last:
            for net in (G, D, G_ema):
                if net is not None:
                    net.to(memory_format=torch.channels_last)
        if self.compile:
            G.compile()
            D.compile()
        return torch.channels_last if channels_last else torch.contiguous_format
