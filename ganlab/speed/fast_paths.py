"""How the iteration runs fast: memory layout (channels_last), ``torch.compile``, and updates that
call backward and the optimizers directly when nothing listens to Lightning's per-update hooks."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import lightning as L
import torch
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch import Tensor, nn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Speed:
    """``channels_last``: G, D (and G_ema) and the real batch in NHWC (faster cuDNN convolutions).
    ``compile``: the updates call ``torch.compile``d G and D (``compiled``; the networks themselves
    stay as they are, so state-dict keys and checkpoints are those of eager runs), except an
    update that computes a lazy term (R1, the path length): its gradient of a gradient (double
    backward) is not supported through compiled graphs (``torch.compile with aot_autograd does
    not currently support double backward``), so it runs the eager networks. ``cuda_graph``:
    replay each iteration as one CUDA graph (``ganlab.speed.cuda_graph``)."""

    channels_last: bool = False
    compile: bool = False
    cuda_graph: bool = False

    def prepare(self, G: nn.Module, D: nn.Module, G_ema: nn.Module | None) -> torch.memory_format:
        """Lay out the networks; the memory format the real batch must take."""
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
        return torch.channels_last if channels_last else torch.contiguous_format

    @staticmethod
    def compiled(net: nn.Module) -> nn.Module:
        """``net`` (a network or its DDP wrapper) compiled; its parameters are ``net``'s."""
        return torch.compile(net)


# Lightning calls these around every backward and optimizer step it wraps (manual_backward,
# LightningOptimizer.step): about 0.2 ms per iteration of hook dispatch on a CPU (bench=overhead).
UPDATE_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step", "on_before_zero_grad")


def direct_updates(trainer, module) -> bool:
    """Whether G's and D's updates may call ``Tensor.backward`` and the optimizers directly, as the
    CUDA-graph path does: no GradScaler to drive (``16-mixed``), and no callback or module hook
    listening to Lightning's per-update hooks (then their updates go through Lightning)."""
    precision = str(trainer.precision)
    if "16" in precision and "bf16" not in precision:
        return False
    listening = [h for h in UPDATE_HOOKS if is_overridden(h, module, L.LightningModule)]
    listening += [h for cb in trainer.callbacks for h in UPDATE_HOOKS if is_overridden(h, cb, L.Callback)]
    return not listening


def backward(loss: Tensor, inputs: list[Tensor] | None = None) -> None:
    """A direct update's backward (``inputs``: the tensors to compute gradients for)."""
    loss.backward(inputs=inputs)


def count_optimizer_steps(trainer, n: int) -> None:
    """Advance Lightning's optimizer-step count (``trainer.global_step``: ``trainer.max_steps``,
    checkpoints) by ``n`` steps that did not go through ``LightningOptimizer.step``. Lightning has no
    public way to do this: the two calls are what its manual-optimization loop makes around each
    wrapped step (``_ManualOptimization._on_before_step`` / ``_on_after_step``)."""
    progress = trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress
    for _ in range(n):
        progress.increment_ready()
        progress.increment_completed()
