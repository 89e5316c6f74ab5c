"""The one LightningModule: it only schedules. Networks live in ``ganlab.models``, objectives in
``ganlab.losses``; this class decides which update runs on which batch.

Per batch (one "GAN iteration"), with B the per-device batch size:
  z ~ prior (B, nz);  fake = G(z) (B, C, H, W), generated once
  D phase on iterations ``it % d_every == 0``: ``d_steps_per_g`` D updates on (real, fake.detach())
  G phase on iterations ``it % g_every == g_every - 1``: one G update on D(fake)
Progress is counted in ``iterations`` and ``images_seen`` (all ranks); Lightning's
``global_step`` counts optimizer steps (two per iteration here) and is not used for schedules.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.utilities.seed import _collect_rng_states, _set_rng_states
from torch import Tensor, nn

from ganlab.losses.base import GANLoss

COUNTERS = ("iterations", "images_seen", "d_updates", "g_updates", "d_skipped")


def sample_latent(
    n: int, nz: int, latent: str, generator: torch.Generator | None = None, device=None
) -> Tensor:
    """(n, nz) from the prior: N(0, I) for ``normal``, U(-1, 1) for ``uniform`` (DCGAN paper)."""
    if latent == "normal":
        return torch.randn(n, nz, generator=generator, device=device)
    return torch.rand(n, nz, generator=generator, device=device) * 2 - 1


def rng_state() -> dict[str, Any]:
    """Global RNG states (torch, CUDA, numpy, python) in types that ``torch.load(weights_only=True)``
    accepts, as Lightning loads checkpoints: numpy's uint32 key array becomes an int64 tensor."""
    state = _collect_rng_states(include_cuda=torch.cuda.is_available())
    name, keys, pos, has_gauss, cached = state["numpy"]
    state["numpy"] = (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached)
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    name, keys, pos, has_gauss, cached = state["numpy"]
    state = {**state, "numpy": (name, keys.numpy().astype(np.uint32), pos, has_gauss, cached)}
    _set_rng_states(state)


class GANModule(L.LightningModule):
    """Alternating GAN training (Goodfellow et al. 2014, Algorithm 1).

    Args:
        generator, discriminator: ``nn.Module``s; D returns logits (B,), or for a pairwise loss
            is a pair discriminator ``D(a, b)``.
        loss: a ``GANLoss`` owning both objectives.
        optimizer: partial optimizer factory, called as ``optimizer(params, lr=...)``.
        lr_g, lr_d: learning rates; different values give TTUR (Heusel et al. 2017).
        nz: latent size. latent: ``normal`` (N(0, I)) or ``uniform`` (U(-1, 1), as in the DCGAN paper).
        d_steps_per_g: D updates per D phase, on the same real and fake batch.
        d_every, g_every: run the D (G) phase on every n-th iteration; ``d_every=2`` is
            "train D every other step".
        d_skip_accuracy: adaptive schedule; skip a D update while D's accuracy on the current
            (real + fake) batch, averaged over all ranks, is above this (e.g. 0.8). Costs one
            host sync per D update; off (None) by default.
        n_fixed: size of the fixed-noise batch used for sample grids, saved in checkpoints.
        nan_check_every: raise on a non-finite loss, checked every n iterations (a host sync).
        channels_last: keep G, D and the real batch in NHWC memory layout (faster on GPUs).
        ema_half_life_kimg: keep ``G_ema``, an exponential moving average of G's weights whose
            half-life is this many thousand images (Karras et al. 2018/2020; 10 in StyleGAN2-ADA);
            samples, metrics and ``ganlab.generate`` use it. None: off.
        ema_rampup: the half-life grows with training as ``min(half_life, images_seen * rampup)``,
            so early EMA weights are not dominated by the random initialisation. None: no ramp-up.
        d_augment: modules applied, in order, to every image D sees (``ganlab.augment``:
            DiffAugment, InstanceNoise), in both phases; differentiable, so G learns through them.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: GANLoss,
        optimizer: Callable[..., torch.optim.Optimizer],
        lr_g: float = 2e-4,
        lr_d: float = 2e-4,
        nz: int = 100,
        latent: str = "normal",
        d_steps_per_g: int = 1,
        d_every: int = 1,
        g_every: int = 1,
        d_skip_accuracy: float | None = None,
        n_fixed: int = 64,
        seed: int = 0,
        nan_check_every: int = 50,
        channels_last: bool = False,
        ema_half_life_kimg: float | None = None,
        ema_rampup: float | None = 0.05,
        d_augment: list[nn.Module] | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        if latent not in ("normal", "uniform"):
            raise ValueError(f"model.latent must be 'normal' or 'uniform', got {latent!r}")
        for name, v in (("d_steps_per_g", d_steps_per_g), ("d_every", d_every), ("g_every", g_every)):
            if int(v) < 1:
                raise ValueError(f"model.{name} must be >= 1, got {v}")
        pair_d = bool(getattr(discriminator, "pairwise", False))
        if loss.pairwise != pair_d:
            need = "a pair discriminator (model=siamese)" if loss.pairwise else "a single-image discriminator"
            raise ValueError(f"loss {type(loss).__name__} needs {need}, got {type(discriminator).__name__}")
        gen_nz = getattr(generator, "nz", nz)
        if gen_nz != nz:
            raise ValueError(f"model.nz={nz} but the generator takes nz={gen_nz}")
        self.G, self.D, self.loss = generator, discriminator, loss
        self.ema_half_life_kimg, self.ema_rampup = ema_half_life_kimg, ema_rampup
        # A submodule, so it is checkpointed and moved with the module; no gradients, no optimizer.
        self.G_ema = copy.deepcopy(generator).eval().requires_grad_(False) if ema_half_life_kimg else None
        self.d_augment = nn.ModuleList(d_augment or [])
        self.optimizer_factory = optimizer
        self.lr_g, self.lr_d, self.nz, self.latent = lr_g, lr_d, nz, latent
        self.d_steps_per_g, self.d_every, self.g_every = int(d_steps_per_g), int(d_every), int(g_every)
        self.d_skip_accuracy, self.nan_check_every = d_skip_accuracy, nan_check_every
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            for net in (self.G, self.D, self.G_ema):
                if net is not None:
                    net.to(memory_format=torch.channels_last)
        self.run_config: dict | None = None  # the composed Hydra config, set by ganlab.train
        # Fixed noise for sample grids: a buffer, so it moves with the module and is checkpointed.
        self.register_buffer("fixed_z", self.sample_z(n_fixed, generator=torch.Generator().manual_seed(seed)))
        for c in COUNTERS:
            setattr(self, c, 0)
        self._pending_rng: dict | None = None
        self.save_hyperparameters(ignore=["generator", "discriminator", "loss", "optimizer", "d_augment"])

    # -- sampling -------------------------------------------------------------------------------
    def sample_z(self, n: int, generator: torch.Generator | None = None, device=None) -> Tensor:
        """Latent batch (n, nz) from the prior."""
        return sample_latent(n, self.nz, self.latent, generator, device)

    @torch.no_grad()
    def generate(self, z: Tensor) -> Tensor:
        """G_ema(z) when EMA is on, else G(z), in eval mode (BatchNorm running statistics);
        images in [-1, 1], float32."""
        net = self.G_ema if self.G_ema is not None else self.G
        was_training = net.training
        net.eval()
        try:
            return net(z.to(self.device)).float()
        finally:
            net.train(was_training)

    @torch.no_grad()
    def update_ema(self, batch_images: int) -> None:
        """G_ema <- beta * G_ema + (1 - beta) * G with beta = 0.5 ** (batch / half-life in images);
        buffers (BatchNorm statistics) are copied. Same on every rank, as G is."""
        half_life = self.ema_half_life_kimg * 1000
        if self.ema_rampup is not None:
            half_life = min(half_life, self.images_seen * self.ema_rampup)
        beta = 0.5 ** (batch_images / max(half_life, 1e-8))
        ema_params, params = list(self.G_ema.parameters()), list(self.G.parameters())
        torch._foreach_lerp_(ema_params, params, 1.0 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    # -- training -------------------------------------------------------------------------------
    def configure_optimizers(self):
        opt_g = self.optimizer_factory(self.G.parameters(), lr=self.lr_g)
        opt_d = self.optimizer_factory(self.D.parameters(), lr=self.lr_d)
        return [opt_g, opt_d]

    def on_train_start(self) -> None:
        # RNG states from a checkpoint are applied here, right before the first batch, so that
        # nothing Lightning does while restoring (loggers, loaders) shifts the streams.
        if self._pending_rng is not None:
            set_rng_state(self._pending_rng)
            self._pending_rng = None

    def training_step(self, batch: Any, batch_idx: int) -> None:
        real = batch[0] if isinstance(batch, (list, tuple)) else batch  # (B, C, H, W) in [-1, 1]
        real = real.contiguous(memory_format=self.memory_format)
        opt_g, opt_d = self.optimizers()
        b, it = real.shape[0], self.iterations
        do_d = it % self.d_every == 0
        do_g = it % self.g_every == self.g_every - 1

        z = self.sample_z(b, device=real.device)
        with torch.set_grad_enabled(do_g):  # no graph through G on D-only iterations
            fake = self.G(z)  # (B, C, H, W), generated once for both phases

        logs: dict[str, Tensor] = {}
        for aug in self.d_augment:
            if hasattr(aug, "images_seen"):
                aug.images_seen = self.images_seen  # schedules (instance-noise annealing)
        if do_d:
            self.toggle_optimizer(opt_d)  # G's params stop requiring grad
            for _ in range(self.d_steps_per_g):
                loss_d, stats = self.loss.d_loss(self.d_input, real, fake.detach(), step=self.d_updates)
                logs.update({"train/loss_d": loss_d.detach(), **{f"train/{k}": v for k, v in stats.items()}})
                if self._skip_d(stats):
                    self.d_skipped += 1
                    continue
                opt_d.zero_grad(set_to_none=True)
                self.manual_backward(loss_d)
                opt_d.step()
                self.d_updates += 1
            self.untoggle_optimizer(opt_d)
        if do_g:
            self.toggle_optimizer(opt_g)  # D's params stop requiring grad: no wasted D grads
            loss_g, _ = self.loss.g_loss(self.d_input, real, fake)
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(loss_g)
            opt_g.step()
            self.untoggle_optimizer(opt_g)
            self.g_updates += 1
            logs["train/loss_g"] = loss_g.detach()
            if self.G_ema is not None:
                self.update_ema(b * self.trainer.world_size)

        self.iterations += 1
        self.images_seen += b * self.trainer.world_size
        if self.nan_check_every and self.iterations % self.nan_check_every == 0:
            self._check_finite(logs)
        if "train/d_acc_real" in logs:
            logs["train/d_acc"] = (logs["train/d_acc_real"] + logs["train/d_acc_fake"]) / 2
        # Tensors, not floats: Lightning converts them only when a logger writes (no per-step sync).
        self.log_dict(logs, on_step=True, on_epoch=False, prog_bar=False)
        self.log_dict(
            {"train/images_seen": float(self.images_seen), "train/iterations": float(self.iterations)},
            on_step=True,
            on_epoch=False,
        )

    def d_input(self, *images: Tensor) -> Tensor:
        """D on augmented inputs: D(aug(x)), or D(aug(a), aug(b)) for a pair discriminator."""
        for aug in self.d_augment:
            images = tuple(aug(x) for x in images)
        return self.D(*images)

    def _skip_d(self, stats: dict[str, Tensor]) -> bool:
        if self.d_skip_accuracy is None:
            return False
        acc = (stats["d_acc_real"] + stats["d_acc_fake"]) / 2
        # Every rank must take the same decision, or DDP's gradient all-reduce would hang.
        acc = self.trainer.strategy.reduce(acc, reduce_op="mean")
        return bool(acc > self.d_skip_accuracy)

    def _check_finite(self, logs: dict[str, Tensor]) -> None:
        bad = [k for k in ("train/loss_d", "train/loss_g") if k in logs and not torch.isfinite(logs[k])]
        if bad:
            raise FloatingPointError(
                f"non-finite {', '.join(bad)} at GAN iteration {self.iterations} "
                f"(checked every {self.nan_check_every}). Lower model.lr_g / model.lr_d, try "
                "trainer.precision=32-true, or check that the data is scaled to [-1, 1]; "
                "resume from the last good checkpoint with ckpt_path=..."
            )

    # -- checkpoints ----------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["ganlab"] = {
            "counters": {c: getattr(self, c) for c in COUNTERS},
            "rng": rng_state(),
            "config": self.run_config,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("ganlab")
        if state is None:
            raise KeyError("not a ganlab checkpoint: it has no 'ganlab' section")
        for c, v in state["counters"].items():
            setattr(self, c, v)
        self._pending_rng = state["rng"]

    # -- helpers for callbacks --------------------------------------------------------------------
    @property
    def grid_rows(self) -> int:
        return int(math.sqrt(self.fixed_z.shape[0]))
