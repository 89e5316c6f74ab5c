"""Find host syncs without a GPU: a CPU stand-in for ``torch.cuda.set_sync_debug_mode("error")``.
It knows the reads it lists (``HOST_READS`` by method name, ``SYNC_OPS`` among aten ops), not
everything CUDA's own check would catch; what runs outside the captured iteration (the
optimizers' steps, ADA's ``observe``, the doctor's probe, checked on its own) is not under it.

A CUDA graph replays device work only: inside a capture, reading a device value on the host
(``.item()``, ``bool(t)``, ``.tolist()``, ``.cpu()``) is an error, and so is an op whose output
shape depends on the data (``nonzero``, boolean indexing, ``unique``...); in an eager step each
of them stalls the host until the GPU catches up. ``NoHostSync`` raises ``HostSyncError`` at the
first such call, on the CPU as on a GPU: a ``TorchFunctionMode`` sees the Python-level reads
(which on a CPU tensor never reach the dispatcher) and a ``TorchDispatchMode`` the aten ops,
among them the ``aten._local_scalar_dense`` that every scalar read becomes (e.g. inside
``torch._foreach_lerp_`` given a 0-d tensor weight).

``check_iteration`` runs a ``GANModule``'s iteration the way ``ganlab.speed.cuda_graph`` captures it
(raw optimizers, ``Tensor.backward``, the EMA weight as a 0-d tensor, the autocast dtype) for
each plan, under the mode. The optimizers' own steps run outside it: on the GPU they are fused
Adam with ``capturable=True`` (no host read, ``../shared/reference/cuda_graph_step.py``), which
torch offers on CUDA only; the CPU's Adam reads its step count with ``.item()``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from contextlib import nullcontext

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode  # the documented home of dispatch modes

aten = torch.ops.aten

# Python-level tensor methods that read device memory on the host.
HOST_READS = {"item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__", "__index__", "__len__"}
# aten ops that read a value on the host or whose output shape depends on the data.
SYNC_OPS = {
    aten._local_scalar_dense.default,
    aten.nonzero.default,
    aten.nonzero_static.default,
    aten.masked_select.default,
    aten.is_nonzero.default,
    aten.equal.default,
    aten._unique2.default,
    aten.unique_consecutive.default,
    aten.unique_dim.default,
    aten.repeat_interleave.Tensor,
}


class HostSyncError(RuntimeError):
    """A device-to-host read (or a data-dependent shape) where none may be."""


_checking: list[bool] = []  # one flag per active NoHostSync block; allowed() lowers the innermost


def _on() -> bool:
    return bool(_checking) and _checking[-1]


class _FunctionReads(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if _on():
            name = getattr(func, "__name__", "")
            if name in HOST_READS and args and isinstance(args[0], Tensor):
                raise HostSyncError(f"Tensor.{name}() reads a device value on the host")
            if name == "to" and _to_cpu(args, kwargs):
                raise HostSyncError("Tensor.to('cpu') copies a device value to the host")
        return func(*args, **kwargs)


def _to_cpu(args, kwargs) -> bool:
    target = kwargs.get("device", args[1] if len(args) > 1 else None)
    return isinstance(target, (str, torch.device)) and torch.device(target).type == "cpu"


class _DispatchReads(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if _on():
            if func in SYNC_OPS:
                raise HostSyncError(
                    f"{func} reads a device value on the host (or sizes its output by the data)"
                )
            if func in (aten.index.Tensor, aten.index_put_.default, aten.index_put.default):
                if any(isinstance(i, Tensor) and i.dtype in (torch.bool, torch.uint8) for i in args[1]):
                    raise HostSyncError(f"{func} with a boolean mask sizes its output by the data")
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def NoHostSync() -> Iterator[None]:  # noqa: N802  (used like the torch modes it combines)
    """Raise ``HostSyncError`` at the first host read inside the block."""
    _checking.append(True)
    try:
        with _FunctionReads(), _DispatchReads():
            yield
    finally:
        _checking.pop()


@contextlib.contextmanager
def allowed() -> Iterator[None]:
    """Inside ``NoHostSync``: let this block read (what runs differently in a GPU capture)."""
    if not _checking:
        yield
        return
    _checking[-1] = False
    try:
        yield
    finally:
        _checking[-1] = True


class _UncheckedStep:
    """An optimizer whose ``step`` runs outside ``NoHostSync`` (see the module docstring)."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        with allowed():
            self.optimizer.step()


def check_iteration(
    module, real: Tensor, plans: Iterable, labels: Tensor | None = None,
    autocast_dtype: torch.dtype | None = None, repeats: int = 2,
) -> int:  # fmt: skip
    """Run ``module.iteration`` for each plan, ``repeats`` times, as the CUDA-graph path calls it,
    under ``NoHostSync``; returns how many iterations ran. ``module`` needs no trainer (and no
    ``d_skip_accuracy``, which the graph path refuses)."""
    optimizers = module.optim.build(module.G.parameters(), module.D.parameters())
    opt_g, opt_d = (_UncheckedStep(o) for o in optimizers)
    module._g_params = [p for p in module.G.parameters() if p.requires_grad]
    ema = torch.zeros((), device=real.device) if module.ema is not None else None

    def backward(loss: Tensor, inputs=None) -> None:
        loss.backward(inputs=inputs)

    ran = 0
    for plan in plans:
        for _ in range(repeats):
            if ema is not None:  # filled before the replay, outside the graph, as cuda_graph.py does
                ema.fill_(module.ema.weight(module.progress.images_seen + real.shape[0], real.shape[0]))
            autocast = torch.autocast(real.device.type, dtype=autocast_dtype, cache_enabled=False)
            with NoHostSync(), autocast if autocast_dtype else nullcontext():
                module.iteration(real, plan, opt_g, opt_d, backward, ema, labels)
            module.progress.advance(real.shape[0], len(plan.d), 0, int(plan.g))
            ran += 1
    return ran
