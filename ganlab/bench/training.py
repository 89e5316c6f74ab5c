"""Throughput: ``python -m ganlab.bench [overrides]`` (``make bench``).

Runs ``ganlab.train``'s real training path (the same instantiate chain: data module, GANModule,
loggers and callbacks at their default cadence) and times ``iters`` GAN iterations after
``warmup``. Reports images/s (all ranks), ms per iteration and peak GPU memory; then, in the same
process and on the same device, the plain PyTorch D+G step of the pytorch/examples DCGAN recipe
(``../shared/reference/dcgan_reference_step.py``, written out below around the same G and D
networks, with on-device synthetic data) at the same batch size and precision, and the ratio.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from omegaconf import DictConfig
from torch import nn

import ganlab.run.resolvers  # noqa: F401
from ganlab.train import build, finish_wandb
from ganlab.training.ddp import CommCounter, GANDDPStrategy
from ganlab.utils.errors import report_user_errors

log = logging.getLogger(__name__)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Throughput(L.Callback):
    """Times iterations ``warmup`` .. ``warmup + iters`` and then stops training; under
    ``GANDDPStrategy`` also counts what DDP all-reduced in that window.

    With a ``reference``, the window is cut into chunks of ``chunk`` iterations and after each one
    (outside ganlab's timing) the plain step runs as many iterations: both are timed in the same
    stretches of time, so a machine whose speed drifts (a shared CPU) favours neither.
    """

    def __init__(
        self, warmup: int, iters: int, reference: ReferenceStep | None = None, chunk: int = 25
    ) -> None:
        self.warmup, self.iters, self.reference, self.chunk = warmup, iters, reference, chunk
        self.seconds = self.host_seconds = 0.0
        self.done = False
        self._t0 = self._host0 = 0.0
        self.updates: dict[str, int] = {}
        self.device = torch.device("cpu")  # the training device, read during the timed window
        self.comm: dict[str, Any] | None = None

    def _start(self) -> None:
        self._t0, self._host0 = time.perf_counter(), time.thread_time()

    def _stop(self, device: torch.device) -> None:
        _sync(device)
        self.seconds += time.perf_counter() - self._t0
        self.host_seconds += time.thread_time() - self._host0

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        it = module.progress.iterations
        counter = trainer.strategy.comm if isinstance(trainer.strategy, GANDDPStrategy) else None
        if it == self.warmup:
            self.device = module.device  # Lightning's teardown moves the module back to the CPU after fit
            _sync(module.device)
            if module.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(module.device)
            self.updates = {"D": module.progress.d_updates, "G": module.progress.g_updates}
            if counter is not None:
                counter.reset()
            if self.reference is not None:
                self.reference.warm_up(min(self.warmup, 10))
            self._start()
        elif self.warmup < it <= self.warmup + self.iters:
            done = it - self.warmup
            last = done == self.iters
            if self.reference is None and not last:
                return
            if not (last or done % self.chunk == 0):
                return
            self._stop(module.device)
            if self.reference is not None:  # as many plain steps as ganlab ran since the last turn
                self.reference.run(done - self.reference.iters)
            if not last:
                self._start()
                return
            self.done = True
            trainer.should_stop = True
            self.updates = {
                "D": module.progress.d_updates - self.updates["D"],
                "G": module.progress.g_updates - self.updates["G"],
            }
            if counter is not None:
                self.comm = self._comm_report(counter, module)

    def _comm_report(self, counter: CommCounter, module) -> dict[str, Any]:
        """Bytes all-reduced per GAN iteration, per network, next to what one all-reduce of the
        network's gradients per update would move (``expected_bytes_per_iter``)."""
        nets = {"G": module.G, "D": module.D}
        report: dict[str, Any] = {}
        for name, net in nets.items():
            grad_bytes = sum(p.numel() * p.element_size() for p in net.parameters() if p.requires_grad)
            report[name] = {
                "bytes_per_iter": counter.bytes[name] / self.iters,
                "reductions_per_iter": counter.backwards[name] / self.iters,
                "buckets_per_iter": counter.calls[name] / self.iters,
                "updates_per_iter": self.updates[name] / self.iters,
                "expected_bytes_per_iter": grad_bytes * self.updates[name] / self.iters,
            }
        report["total_bytes_per_iter"] = report["G"]["bytes_per_iter"] + report["D"]["bytes_per_iter"]
        return report


class ReferenceStep:
    """The plain PyTorch recipe around copies of the same networks: one D step on
    (real, G(z).detach()), one G step, BCE on logits, Adam 2e-4 (0.5, 0.999), fused on a GPU;
    real images already on the device (``../shared/reference/dcgan_reference_step.py``).
    ``run(n)`` times n steps and adds them to the totals; it draws from forked RNG streams, so
    interleaving it with training changes nothing there.

    ``graphed``: the whole step captured once in a CUDA graph and replayed
    (``../shared/reference/cuda_graph_step.py``: capturable fused Adam, warm-up on a side stream,
    the real batch in a static buffer, z drawn inside the graph); CUDA only, run on its own (not
    interleaved: its replays advance the CUDA generator that the graph registered)."""

    def __init__(
        self,
        G: nn.Module,
        D: nn.Module,
        batch: int,
        nz: int,
        device: torch.device,
        bf16: bool,
        channels_last: bool,
        graphed: bool = False,
    ) -> None:
        if graphed and device.type != "cuda":
            raise ValueError("a graphed reference step needs a CUDA device")
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.G = G.to(device, memory_format=fmt).train()
        self.D = D.to(device, memory_format=fmt).train()
        fused = device.type == "cuda"
        adam = dict(lr=2e-4, betas=(0.5, 0.999), fused=fused, capturable=graphed)
        self.opt_g = torch.optim.Adam(self.G.parameters(), **adam)
        self.opt_d = torch.optim.Adam(self.D.parameters(), **adam)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.graphed = graphed
        self.bce = nn.BCEWithLogitsLoss()
        shape = (batch, self.G.channels, self.G.image_size, self.G.image_size)
        self.real = (torch.rand(*shape, device=device) * 2 - 1).contiguous(memory_format=fmt)
        self.ones, self.zeros = torch.ones(batch, device=device), torch.zeros(batch, device=device)
        self.batch, self.nz, self.device, self.bf16 = batch, nz, device, bf16
        self.iters, self.seconds, self.host_seconds = 0, 0.0, 0.0

    def step(self) -> None:
        G, D, bce, dev = self.G, self.D, self.bce, self.device
        z = torch.randn(self.batch, self.nz, device=dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=self.bf16):
            fake = G(z)
            d_loss = bce(D(self.real), self.ones) + bce(D(fake.detach()), self.zeros)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=self.bf16):
            g_loss = bce(D(fake), self.ones)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()

    def _rng(self):
        if self.graphed:
            return nullcontext()
        return torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else [])

    def warm_up(self, n: int) -> None:
        if self.graphed and self.graph is None:
            self._capture()
        with self._rng():
            for _ in range(n):
                self._iteration()
        _sync(self.device)

    def _capture(self, warmup: int = 5) -> None:
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):  # cuDNN autotuning, optimizer state, allocator pools
            for _ in range(warmup):
                self.step()
        torch.cuda.current_stream(self.device).wait_stream(side)
        self.batches, self.turn = [torch.rand_like(self.real) * 2 - 1 for _ in range(2)], 0  # same layout
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.step()

    def _iteration(self) -> None:
        if self.graph is not None:  # a new batch into the static buffer, as the reference's loop does
            self.turn += 1
            self.real.copy_(self.batches[self.turn % 2])
            self.graph.replay()
        else:
            self.step()

    def run(self, n: int) -> None:
        with self._rng():
            _sync(self.device)
            t0, host0 = time.perf_counter(), time.thread_time()
            for _ in range(n):
                self._iteration()
            _sync(self.device)
            self.seconds += time.perf_counter() - t0
            self.host_seconds += time.thread_time() - host0
        self.iters += n


def figures(cfg: DictConfig, model, trainer, timer: Throughput) -> dict[str, Any]:
    """ganlab's figures of the timed window: images/s (all ranks), ms and host ms per iteration."""
    device = timer.device  # not model.device: after fit the module is back on the CPU
    batch, world = cfg.data.batch_size, trainer.world_size
    result: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "world_size": world,
        "batch_per_device": batch,
        "image_size": cfg.data.image_size,
        "precision": str(trainer.precision),
        "channels_last": bool(cfg.model.get("channels_last", False)),
        "iters": cfg.iters,
        "ganlab_img_per_s": round(cfg.iters * batch * world / timer.seconds, 1),
        "ganlab_ms_per_iter": round(timer.seconds / cfg.iters * 1e3, 3),
        # CPU time of the thread that runs the loop: the host's work per iteration, which other
        # processes on a shared machine do not inflate (with one torch thread on CPU it is all of it).
        "ganlab_host_ms_per_iter": round(timer.host_seconds / cfg.iters * 1e3, 3),
        "peak_gpu_mem_gb": round(torch.cuda.max_memory_allocated(device) / 2**30, 3)
        if device.type == "cuda"
        else None,
    }
    return result


def compared(result: dict[str, Any], reference: ReferenceStep, cfg: DictConfig) -> dict[str, Any]:
    """The plain step's figures (run now if it did not run interleaved) and ganlab's against them."""
    batch, world = cfg.data.batch_size, result["world_size"]
    out: dict[str, Any] = {}
    if reference.iters == 0:
        reference.warm_up(min(cfg.warmup, 10))
        reference.run(cfg.iters)
    out["reference_ms_per_iter"] = round(reference.seconds / reference.iters * 1e3, 3)
    out["reference_host_ms_per_iter"] = round(reference.host_seconds / reference.iters * 1e3, 3)
    out["reference_img_per_s"] = round(reference.iters * batch / reference.seconds, 1)
    # Time per iteration against the plain loop's: 1.0 is no framework overhead at all.
    out["time_ratio"] = round(result["ganlab_ms_per_iter"] / out["reference_ms_per_iter"], 3)
    out["host_time_ratio"] = round(result["ganlab_host_ms_per_iter"] / out["reference_host_ms_per_iter"], 3)
    # Per device: the reference runs on one device, ganlab's figure sums all ranks.
    out["ratio_per_device"] = round(result["ganlab_img_per_s"] / world / out["reference_img_per_s"], 3)
    return out


def bench(cfg: DictConfig) -> dict[str, Any]:
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    L.seed_everything(cfg.seed)
    timer = Throughput(cfg.warmup, cfg.iters, chunk=cfg.get("interleave", 25))
    datamodule, model, trainer = build(cfg, extra_callbacks=[timer])
    reference = None
    if cfg.reference:
        reference = ReferenceStep(
            hydra.utils.instantiate(cfg.model.generator), hydra.utils.instantiate(cfg.model.discriminator),
            cfg.data.batch_size, cfg.model.nz, trainer.strategy.root_device,
            bf16="bf16" in str(trainer.precision), channels_last=bool(cfg.model.get("channels_last", False)),
        )  # fmt: skip
    # One process: the plain step interleaved with ganlab's. Under DDP, rank 0 runs it after training
    # (interleaved, the other ranks would stand waiting for it inside their timed window).
    timer.reference = reference if trainer.world_size == 1 else None
    try:
        trainer.fit(model, datamodule=datamodule)
    finally:
        finish_wandb(trainer.loggers)
    if not timer.done:
        raise RuntimeError(
            f"training stopped after {model.progress.iterations} iterations, before warmup + iters"
        )
    result = figures(cfg, model, trainer, timer)
    if reference is not None and trainer.is_global_zero:
        result.update(compared(result, reference, cfg))
    if timer.comm is not None:
        result["allreduce"] = timer.comm
    if trainer.is_global_zero:
        out = Path(cfg.paths.output_dir) / "bench.json"
        out.write_text(json.dumps(result, indent=2))
        print(json.dumps(result))
    return result


@hydra.main(version_base="1.3", config_path="../conf", config_name="bench")
@report_user_errors
def main(cfg: DictConfig) -> None:
    bench(cfg)


if __name__ == "__main__":
    main()
