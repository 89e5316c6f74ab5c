"""Data-parallel training for GANs: G and D as separate DDP modules, picked automatically.

Lightning's ``ddp`` wraps the whole LightningModule in one ``DistributedDataParallel``. A GAN
update touches only G or only D, so that wrapper either fails ("parameters that were not used in
producing the loss") or needs ``find_unused_parameters``, which walks the autograd graph on every
backward and all-reduces both networks' buckets each time. ``GANDDPStrategy`` instead wraps G and
D on their own, as stylegan2-ada-pytorch does (``training_loop.py``: one DDP per network,
``broadcast_buffers=False``): the D phase all-reduces D's gradients once per D update, the G phase
G's once per G update. Besides those, only a few scalars are all-reduced, every few dozen
iterations: the logged statistics (means over ranks), the divergence flag and the preemption flag.

BatchNorm buffers (running mean/var) are per rank: each rank keeps the statistics of its own
batches, which training-mode BatchNorm never reads, and no buffer broadcast is paid per forward.
Checkpoints hold rank 0's buffers; ``broadcast_buffers`` gives every rank rank 0's before an
evaluation in eval mode, so all ranks generate with one network. ``trainer.sync_batchnorm=true``
converts BatchNorm to ``SyncBatchNorm`` (batch statistics over all ranks, an all-reduce inside each
forward); torch runs SyncBatchNorm on GPUs only, so on CPU it is refused with that reason.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

import torch
import torch.distributed as dist
from lightning.pytorch.strategies import DDPStrategy
from torch import nn
from torch.nn.parallel import DistributedDataParallel

# Strategy names a user may type, and the process start method each means for GANDDPStrategy.
START_METHODS = {
    "ddp": "popen",
    "ddp_find_unused_parameters_false": "popen",
    "ddp_find_unused_parameters_true": "popen",
    "ddp_spawn": "spawn",
    "ddp_spawn_find_unused_parameters_false": "spawn",
    "ddp_spawn_find_unused_parameters_true": "spawn",
    "ddp_fork": "fork",
    "ddp_notebook": "fork",
}
KNOWN_STRATEGIES = {*START_METHODS, "auto", "single_device"}  # what resolve_strategy accepts by name


class CommCounter:
    """Counts what DDP all-reduces: one entry per network, ``calls`` (buckets) and ``bytes``.
    Installed as each wrapper's communication hook; it performs the same averaging all-reduce as
    DDP's default hook (``ddp_comm_hooks.default_hooks.allreduce_hook``), counting on the way."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.bytes: dict[str, int] = {}
        self.backwards: dict[str, int] = {}

    def reset(self) -> None:
        for d in (self.calls, self.bytes, self.backwards):
            for k in d:
                d[k] = 0

    def hook(self, name: str):
        self.calls[name] = self.bytes[name] = self.backwards[name] = 0

        # No annotations: DDP checks them against the classes, and this module's are strings.
        def allreduce(_state, bucket):  # (None, dist.GradBucket) -> Future[Tensor]
            buf = bucket.buffer()
            self.calls[name] += 1
            self.bytes[name] += buf.numel() * buf.element_size()
            if bucket.is_last():
                self.backwards[name] += 1  # one reduction of the whole network = one backward
            buf.div_(dist.get_world_size())
            return dist.all_reduce(buf, async_op=True).get_future().then(lambda fut: fut.value()[0])

        return allreduce


@runtime_checkable
class TwoNetworks(Protocol):
    """What ``GANDDPStrategy`` needs of the LightningModule it trains
    (``ganlab.training.module.GANModule``)."""

    def ddp_networks(self) -> dict[str, nn.Module]:
        """The networks trained with gradients, by name, each to be wrapped in its own DDP."""

    def use_ddp(self, wrappers: dict[str, nn.Module]) -> None:
        """Call the networks through these wrappers from now on (``{}``: directly)."""


class GANDDPStrategy(DDPStrategy):
    """DDP with one ``DistributedDataParallel`` per network of a ``GANModule``.

    The LightningModule itself stays unwrapped (its state dict keys do not change); the module is
    handed the wrappers through ``GANModule.use_ddp`` and calls G and D through them.
    ``comm`` counts the bytes each network all-reduces (read by ``ganlab.bench``).
    """

    strategy_name = "gan_ddp"

    #: DistributedDataParallel's settings for both wrappers (not the whole LightningModule's).
    DDP_SETTINGS = ("broadcast_buffers", "bucket_cap_mb", "gradient_as_bucket_view", "static_graph")

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("broadcast_buffers", False)
        kwargs.pop("find_unused_parameters", None)  # never needed: each wrapper is fully used
        self.ddp_settings = {k: kwargs[k] for k in self.DDP_SETTINGS if k in kwargs}
        super().__init__(**kwargs)
        self.comm = CommCounter()

    def configure_ddp(self) -> None:
        module = self.model
        if not isinstance(module, TwoNetworks):
            raise TypeError(
                f"GANDDPStrategy trains a module with ddp_networks/use_ddp, got {type(module).__name__}"
            )
        device_ids = self.determine_ddp_device_ids()
        # DDP's own advice: build the wrappers on a side stream on CUDA (Lightning does the same).
        ctx = torch.cuda.stream(torch.cuda.Stream()) if device_ids is not None else contextlib.nullcontext()
        wrappers: dict[str, nn.Module] = {}
        with ctx:
            for name, net in module.ddp_networks().items():
                ddp = DistributedDataParallel(net, device_ids=device_ids, **self.ddp_settings)
                ddp.register_comm_hook(None, self.comm.hook(name))
                wrappers[name] = ddp
        module.use_ddp(wrappers)

    def teardown(self) -> None:
        if isinstance(self.lightning_module, TwoNetworks):
            self.lightning_module.use_ddp({})
        super().teardown()


@contextlib.contextmanager
def no_sync(net: nn.Module) -> Iterator[None]:
    """``net.no_sync()`` for a DDP wrapper, nothing otherwise: a forward whose backward must not
    reduce this network's gradients (D's forward in the G phase)."""
    if isinstance(net, DistributedDataParallel):
        with net.no_sync():
            yield
    else:
        yield


def broadcast_buffers(*nets: nn.Module | None) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics) of ``nets``; no-op
    outside DDP."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    for net in nets:
        if net is not None:
            for b in net.buffers():
                dist.broadcast(b, src=0)


def _accelerator_name(accelerator: str) -> str:
    from lightning.pytorch.accelerators import CUDAAccelerator, MPSAccelerator

    if accelerator == "auto":
        return "cuda" if CUDAAccelerator.is_available() else "mps" if MPSAccelerator.is_available() else "cpu"
    if accelerator == "gpu":
        return "cuda" if CUDAAccelerator.is_available() else "mps"
    return accelerator


def _device_count(accelerator: str, devices: Any) -> int:
    """How many processes per node ``Trainer(accelerator=..., devices=...)`` starts, by Lightning's
    public accelerator API."""
    from lightning.pytorch.accelerators import CPUAccelerator, CUDAAccelerator, MPSAccelerator

    cls = {"cpu": CPUAccelerator, "cuda": CUDAAccelerator, "mps": MPSAccelerator}.get(accelerator)
    if cls is None:
        return 1  # another accelerator (tpu, hpu): Lightning decides
    if devices == "auto":
        devices = 1 if accelerator == "cpu" else -1
    return len(cls.get_parallel_devices(cls.parse_devices(devices)))


def resolve_strategy(
    strategy: Any,
    accelerator: str = "auto",
    devices: Any = "auto",
    num_nodes: int = 1,
    sync_batchnorm: bool = False,
) -> Any:
    """What to pass to ``Trainer(strategy=...)`` for a GAN.

    ``auto`` on one device stays Lightning's single-device strategy; ``auto`` on several devices
    or nodes, and every ``ddp*`` name, become ``GANDDPStrategy`` with the same start method.
    A strategy object is passed through. Other names (``fsdp``, ``deepspeed``, ``dp``...) are refused
    with the override to use: they shard or replicate the whole module, which manual, alternating
    G/D optimisation does not support.
    """
    accelerator = _accelerator_name(str(accelerator))
    if sync_batchnorm and accelerator == "cpu":
        raise ValueError(
            "trainer.sync_batchnorm=true needs GPUs: torch's SyncBatchNorm runs on CUDA devices only. "
            "On CPU set trainer.sync_batchnorm=false (each rank then keeps its own BatchNorm statistics)."
        )
    if not isinstance(strategy, str):
        return strategy
    name = strategy.lower()
    if name == "auto":
        return GANDDPStrategy() if _device_count(accelerator, devices) * int(num_nodes) > 1 else "auto"
    if name in START_METHODS:
        return GANDDPStrategy(start_method=START_METHODS[name])
    if name == "single_device":
        return name
    raise ValueError(
        f"trainer.strategy={strategy} cannot train a ganlab GAN (alternating G/D updates with manual "
        "optimisation need G and D as separate data-parallel modules). Use trainer.strategy=auto "
        "(the default: GAN DDP on several devices), trainer.strategy=ddp or trainer.strategy=ddp_spawn."
    )
