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
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from omegaconf import DictConfig
from torch import nn

import ganlab.config  # noqa: F401
from ganlab.strategy import CommCounter, GANDDPStrategy
from ganlab.train import build, finish_wandb

log = logging.getLogger(__name__)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Throughput(L.Callback):
    """Times iterations ``warmup`` .. ``warmup + iters`` and then stops training; under
    ``GANDDPStrategy`` also counts what DDP all-reduced in that window."""

    def __init__(self, warmup: int, iters: int) -> None:
        self.warmup, self.iters = warmup, iters
        self.t0 = self.seconds = None
        self.updates: dict[str, int] = {}
        self.comm: dict[str, Any] | None = None

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        it = module.iterations
        counter = trainer.strategy.comm if isinstance(trainer.strategy, GANDDPStrategy) else None
        if it == self.warmup:
            _sync(module.device)
            if module.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(module.device)
            self.updates = {"D": module.d_updates, "G": module.g_updates}
            if counter is not None:
                counter.reset()
            self.t0 = time.perf_counter()
        elif it == self.warmup + self.iters:
            _sync(module.device)
            self.seconds = time.perf_counter() - self.t0
            trainer.should_stop = True
            self.updates = {
                "D": module.d_updates - self.updates["D"],
                "G": module.g_updates - self.updates["G"],
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


def reference_step_throughput(
    G: nn.Module,
    D: nn.Module,
    batch: int,
    nz: int,
    device: torch.device,
    bf16: bool,
    channels_last: bool,
    warmup: int,
    iters: int,
) -> dict[str, Any]:
    """The plain PyTorch recipe: one D step on (real, G(z).detach()), one G step, BCE on logits,
    fused Adam 2e-4 (0.5, 0.999); real images already on the device."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    G, D = G.to(device, memory_format=fmt).train(), D.to(device, memory_format=fmt).train()
    fused = device.type == "cuda"
    opt_g = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999), fused=fused)
    opt_d = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999), fused=fused)
    bce = nn.BCEWithLogitsLoss()
    real = (torch.rand(batch, G.channels, G.image_size, G.image_size, device=device) * 2 - 1).contiguous(
        memory_format=fmt
    )
    ones, zeros = torch.ones(batch, device=device), torch.zeros(batch, device=device)

    def step() -> None:
        z = torch.randn(batch, nz, device=device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            fake = G(z)
            d_loss = bce(D(real), ones) + bce(D(fake.detach()), zeros)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            g_loss = bce(D(fake), ones)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

    for _ in range(warmup):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    _sync(device)
    dt = (time.perf_counter() - t0) / iters
    return {"img_per_s": round(batch / dt, 1), "ms_per_iter": round(dt * 1e3, 3)}


def bench(cfg: DictConfig) -> dict[str, Any]:
    L.seed_everything(cfg.seed)
    timer = Throughput(cfg.warmup, cfg.iters)
    datamodule, model, trainer = build(cfg, extra_callbacks=[timer])
    try:
        trainer.fit(model, datamodule=datamodule)
    finally:
        finish_wandb()
    if timer.seconds is None:
        raise RuntimeError(f"training stopped after {model.iterations} iterations, before warmup + iters")
    device = model.device
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
        "peak_gpu_mem_gb": round(torch.cuda.max_memory_allocated(device) / 2**30, 3)
        if device.type == "cuda"
        else None,
    }
    if cfg.reference and trainer.is_global_zero:
        ref = reference_step_throughput(
            hydra.utils.instantiate(cfg.model.generator), hydra.utils.instantiate(cfg.model.discriminator),
            batch, cfg.model.nz, device, bf16="bf16" in str(trainer.precision),
            channels_last=result["channels_last"], warmup=min(cfg.warmup, 10), iters=cfg.iters,
        )  # fmt: skip
        result["reference_img_per_s"] = ref["img_per_s"]
        result["reference_ms_per_iter"] = ref["ms_per_iter"]
        # Time per iteration against the plain loop's: 1.0 is no framework overhead at all.
        result["time_ratio"] = round(result["ganlab_ms_per_iter"] / ref["ms_per_iter"], 3)
        # Per device: the reference runs on one device, ganlab's figure sums all ranks.
        result["ratio_per_device"] = round(result["ganlab_img_per_s"] / world / ref["img_per_s"], 3)
    if timer.comm is not None:
        result["allreduce"] = timer.comm
    if trainer.is_global_zero:
        out = Path(cfg.paths.output_dir) / "bench.json"
        out.write_text(json.dumps(result, indent=2))
        print(json.dumps(result))
    return result


@hydra.main(version_base="1.3", config_path="../conf", config_name="bench")
def main(cfg: DictConfig) -> None:
    bench(cfg)


if __name__ == "__main__":
    main()
