"""The whole GAN iteration (D update(s), G update, EMA) replayed as one CUDA graph.

At DCGAN sizes and batch 128 an eager iteration on an H100 is bound by the host issuing
kernels, not by the GPU (17.6k images/s eager against 46.4k in one graph for the plain step;
``../shared/reference/cuda_graph_step.py``). This module follows that reference:

- a static input buffer: each iteration copies its real batch in, then replays;
- fused Adam with ``capturable=True`` (its step counter lives on the GPU), set by ``GANModule``;
- random numbers (z, label flips, DiffAugment) drawn inside the graph: each replay draws anew;
- ``warmup`` eager iterations of each plan on a side stream before its capture (cuDNN autotuning,
  optimizer state, allocator pools), then capture, then replay;
- no host sync inside: losses and statistics are the graph's static outputs, read when logged;
- the EMA weight (which ramps up with training) is a device scalar filled before each replay.

One graph per ``Plan`` (which updates run, and which carry a lazy term: R1, the path length),
so ``d_every``, ``g_every`` and the lazy terms each replay their own graph. A conditional run's
labels have their own static buffer beside the images'. What decides on the host during the step
cannot be captured and is refused by ``check_capturable`` with the reason;
``tests/unit/test_nosync.py`` runs every plan under a dispatch mode that fails on any
device-to-host read (``tests.host_sync``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable
from contextlib import nullcontext

import torch
from torch import Tensor

from ganlab.speed.fast_paths import backward


def check_capturable(module, trainer) -> None:
    """Raise ``ValueError`` naming the setting when ``model.cuda_graph=true`` cannot work."""
    problems = []
    if module.device.type != "cuda":
        problems.append(f"it needs a CUDA device (this run is on {module.device.type}): leave it false")
    if trainer.world_size > 1:
        problems.append("it runs on one device: under DDP leave it false (the eager DDP path is used)")
    if module.schedule.d_skip_accuracy is not None:
        problems.append("model.d_skip_accuracy decides on the host every D update; set it to null")
    if "16" in str(trainer.precision) and "bf16" not in str(trainer.precision):
        problems.append("16-mixed's GradScaler checks for inf on the host; use trainer.precision=bf16-mixed")
    if not module.d_augment.capturable:
        problems.append("an augmentation decides on the host each iteration (InstanceNoise with anneal_kimg)")
    if module.optim.scheduled:
        problems.append(
            "a learning-rate schedule changes lr on the host, which a replay ignores: use constant"
        )
    if module.speed.compile:
        problems.append("model.compile=true: choose one of compile and cuda_graph")
    if problems:
        raise ValueError("model.cuda_graph=true cannot be used here: " + "; ".join(problems))


def graph_iteration(module, trainer) -> CUDAGraphIteration:
    """The module's iteration (``GANModule.iteration``) on the raw optimizers (replays bypass
    Lightning's wrappers) and ``Tensor.backward``, with the EMA weight as the graph's device scalar;
    captured on CUDA, run as it is elsewhere (the CPU tests of this path)."""
    check_capturable(module, trainer)
    opt_g, opt_d = (o.optimizer for o in module.optimizers())

    def step(real: Tensor, plan: Hashable, labels: Tensor | None) -> dict[str, Tensor]:
        ema = graphed.ema_weight if module.ema is not None else None
        return module.iteration(real, plan, opt_g, opt_d, backward, ema, labels).logs

    bf16 = "bf16" in str(trainer.precision)
    graphed = CUDAGraphIteration(step, module.device, autocast_dtype=torch.bfloat16 if bf16 else None,
                                 capture=module.device.type == "cuda")  # fmt: skip
    return graphed


class CUDAGraphIteration:
    """Runs ``fn(static_real, plan, static_labels) -> outputs`` eagerly ``warmup`` times per plan
    on a side stream, then captures it once and replays it. ``outputs`` (a dict of tensors) are
    static: the same tensors after every replay of that plan, rewritten in place.

    ``capture=False`` runs ``fn`` on the static buffer every time, without streams or graphs: the
    same path minus the capture, which is how the CPU tests check it against the eager step."""

    def __init__(
        self,
        fn: Callable[[Tensor, Hashable, Tensor | None], dict[str, Tensor]],
        device: torch.device,
        warmup: int = 3,
        autocast_dtype: torch.dtype | None = None,
        capture: bool = True,
    ) -> None:
        self.fn, self.device, self.warmup, self.capture = fn, device, warmup, capture
        self.autocast_dtype = autocast_dtype
        self.graphs: dict[Hashable, tuple[torch.cuda.CUDAGraph, dict[str, Tensor]]] = {}
        self.seen: Counter = Counter()
        self.static_real: Tensor | None = None
        self.static_labels: Tensor | None = None  # (B,) int64 of a conditional run
        self.ema_weight = torch.zeros((), device=device)  # 1 - beta, filled before each replay
        self._side = torch.cuda.Stream(device) if capture else None

    def reset(self) -> None:
        """Forget the captured graphs: after weights or optimizer states were replaced (a
        rollback), the captured addresses and learning rates are stale; warm up and capture anew."""
        self.graphs.clear()
        self.seen.clear()

    def _autocast(self):
        # Autocast's cast cache must be off inside a capture (the cached casts would be freed
        # and re-made outside the graph's memory pool).
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast("cuda", dtype=self.autocast_dtype, cache_enabled=False)

    def __call__(self, real: Tensor, plan: Hashable, labels: Tensor | None = None) -> dict[str, Tensor]:
        if self.static_real is None or self.static_real.shape != real.shape:
            self.static_real = torch.empty_like(real)  # keeps real's memory format (channels_last)
            self.static_labels = torch.empty_like(labels) if labels is not None else None
            self.reset()
        self.static_real.copy_(real)
        if labels is not None:
            self.static_labels.copy_(labels)
        if not self.capture:
            with self._autocast():
                return self.fn(self.static_real, plan, self.static_labels)
        if plan in self.graphs:
            graph, outputs = self.graphs[plan]
            graph.replay()
            return outputs
        n = self.seen[plan]
        self.seen[plan] += 1
        if n < self.warmup:  # an ordinary iteration, on a side stream as the capture will be
            current = torch.cuda.current_stream(self.device)
            self._side.wait_stream(current)
            with torch.cuda.stream(self._side), self._autocast():
                outputs = self.fn(self.static_real, plan, self.static_labels)
            current.wait_stream(self._side)
            return outputs
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), self._autocast():
            outputs = self.fn(self.static_real, plan, self.static_labels)
        self.graphs[plan] = (graph, outputs)
        graph.replay()  # capturing records the work without running it: run this iteration
        return outputs
