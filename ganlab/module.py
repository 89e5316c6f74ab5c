"""The one LightningModule: it only schedules. Networks live in ``ganlab.models``, objectives in
``ganlab.losses``; this class decides which update runs on which batch.

Per batch (one "GAN iteration"), with B the per-device batch size and k = ``d_steps_per_g``
(the loader yields k*B real images per iteration, k minibatches of B):
  z ~ prior (B, nz);  fake = G(z) (B, C, H, W), generated once for the last D update and G
  D phase on iterations ``it % d_every == 0``: k D updates, the j-th on (real_j, G(z_j)) with a
    fresh real minibatch and fresh z each (Goodfellow et al. 2014, Algorithm 1); the last one
    uses ``fake.detach()``
  G phase on iterations ``it % g_every == g_every - 1``: one G update on D(fake)
Progress is counted in ``iterations`` and ``images_seen`` (all ranks); Lightning's
``global_step`` counts optimizer steps (two per iteration here) and is not used for schedules.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger
from torch import Tensor, nn

from ganlab.augment import ScheduledAugment
from ganlab.cadence import due
from ganlab.cuda_graph import CUDAGraphIteration, check_capturable
from ganlab.errors import UsageError
from ganlab.losses.base import GANLoss
from ganlab.optim import GANOptimizers
from ganlab.rng import all_rank_states, restore_rank_state, seed_rank_streams
from ganlab.runlength import planned_iterations
from ganlab.stats import StepStats
from ganlab.strategy import no_sync

log = logging.getLogger(__name__)

COUNTERS = ("iterations", "images_seen", "d_updates", "g_updates", "d_skipped")


@dataclass(frozen=True)
class Plan:
    """What one iteration runs: the D phase as the lazy-R1 flag of each of its k updates (empty:
    no D phase) and whether the G phase runs. Hashable: the CUDA-graph path captures one graph
    per distinct plan (e.g. with R1 every 16 D updates: one graph with R1, one without)."""

    d_r1: tuple[bool, ...]
    g: bool


def sample_latent(
    n: int, nz: int, latent: str, generator: torch.Generator | None = None, device=None
) -> Tensor:
    """(n, nz) from the prior: N(0, I) for ``normal``, U(-1, 1) for ``uniform`` (DCGAN paper)."""
    if latent == "normal":
        return torch.randn(n, nz, generator=generator, device=device)
    return torch.rand(n, nz, generator=generator, device=device) * 2 - 1


class GANModule(L.LightningModule):
    """Alternating GAN training (Goodfellow et al. 2014, Algorithm 1).

    Args:
        generator, discriminator: ``nn.Module``s; D returns logits (B,), or for a pairwise loss
            is a pair discriminator ``D(a, b)``.
        loss: a ``GANLoss`` owning both objectives.
        optimizer: ``ganlab.optim.GANOptimizers``: G's and D's optimizers (``optimizer.g``,
            ``optimizer.d``, each with its own lr: different values give TTUR, Heusel et al. 2017)
            and their learning-rate schedules over the run.
        nz: latent size. latent: ``normal`` (N(0, I)) or ``uniform`` (U(-1, 1), as in the DCGAN paper).
        d_steps_per_g: D updates per D phase (k in Algorithm 1), each on a fresh real minibatch
            and fresh latents; the data module yields k minibatches per iteration.
        d_every, g_every: run the D (G) phase on every n-th iteration; ``d_every=2`` is
            "train D every other step".
        d_skip_accuracy: adaptive schedule; skip a D update while D's accuracy on the current
            (real + fake) batch, averaged over all ranks, is above this (e.g. 0.8). Costs one
            host sync per D update; off (None) by default.
        n_fixed: size of the fixed-noise batch used for sample grids, saved in checkpoints.
        channels_last: keep G, D and the real batch in NHWC memory layout (faster on GPUs).
        ema_half_life_kimg: keep ``G_ema``, an exponential moving average of G's weights whose
            half-life is this many thousand images (Karras et al. 2018/2020; 10 in StyleGAN2-ADA);
            samples, metrics and ``ganlab.generate`` use it. None: off.
        ema_rampup: the half-life grows with training as ``min(half_life, images_seen * rampup)``,
            so early EMA weights are not dominated by the random initialisation. None: no ramp-up.
        d_augment: modules applied, in order, to every image D sees (``ganlab.augment``:
            DiffAugment, InstanceNoise), in both phases; differentiable, so G learns through them.
        compile: ``torch.compile`` G and D in place (``nn.Module.compile``: state-dict keys are
            unchanged, so checkpoints stay interchangeable with eager runs).
        cuda_graph: replay each iteration as one CUDA graph (``ganlab.cuda_graph``); CUDA, one
            device. Lightning's per-step hooks (on_before_backward, ...) and ``global_step`` are
            not advanced by replays, and resume is not bit-exact (graph RNG offsets).
        num_classes, class_names: class-conditional training (set by ``ganlab.train`` from the
            data when ``data.conditional=true``): batches are (images, labels), G is called as
            G(z, y) and D as D(x, y); each minibatch's fakes are generated for its real labels,
            so D compares real and generated images of the same classes and the fakes' class mix
            is the data's. The fixed-noise grid has one row per class (the same z per column).

    Statistics are accumulated on the device (``ganlab.stats.StepStats``) and handed to the
    loggers every ``trainer.log_every_n_steps`` iterations, as means over that interval.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: GANLoss,
        optimizer: GANOptimizers,
        nz: int = 100,
        latent: str = "normal",
        d_steps_per_g: int = 1,
        d_every: int = 1,
        g_every: int = 1,
        d_skip_accuracy: float | None = None,
        n_fixed: int = 64,
        seed: int = 0,
        channels_last: bool = False,
        ema_half_life_kimg: float | None = None,
        ema_rampup: float | None = 0.05,
        d_augment: list[nn.Module] | None = None,
        compile: bool = False,
        cuda_graph: bool = False,
        num_classes: int = 0,
        class_names: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        check_conditional(generator, discriminator, loss, num_classes, class_names)
        self.num_classes = int(num_classes)
        self.class_names = list(class_names) if class_names else None
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
        self.optim = optimizer
        self._planned_iterations: float | None = None  # for the schedules, set at the first iteration
        self.nz, self.latent = nz, latent
        self.d_steps_per_g, self.d_every, self.g_every = int(d_steps_per_g), int(d_every), int(g_every)
        self.d_skip_accuracy = d_skip_accuracy
        if compile and channels_last and torch.cuda.is_available() and torch.__version__.startswith("2.11"):
            # torch 2.11's inductor failed on these networks in channels_last on an H100 (a fake-kernel
            # stride assertion in convolution_backward): compile in the default layout there.
            log.warning("model.compile=true with channels_last fails in torch 2.11; using NCHW")
            channels_last = False
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            for net in (self.G, self.D, self.G_ema):
                if net is not None:
                    net.to(memory_format=torch.channels_last)
        self.compile_networks, self.cuda_graph = compile, cuda_graph
        self.graphed: CUDAGraphIteration | None = None  # set at train start with cuda_graph
        if compile:
            self.G.compile()
            self.D.compile()
        self.run_config: dict | None = None  # the composed Hydra config, set by ganlab.train
        self.seed = seed
        self.stats = StepStats()
        # DDP wrappers of G and D, set by ganlab.strategy.GANDDPStrategy; a plain dict, so they are
        # not submodules (state-dict keys stay "G.*", "D.*").
        self._ddp: dict[str, nn.Module] = {}
        self._g_params: list[nn.Parameter] = []
        self._ema_tensors: tuple[list[Tensor], ...] = ()
        # Fixed noise for sample grids: a buffer, so it moves with the module and is checkpointed.
        # Conditional: one row per class, the same latents in every row (cols of them).
        fixed = self.sample_z(n_fixed, generator=torch.Generator().manual_seed(seed))
        self.grid_columns = int(math.sqrt(n_fixed))
        fixed_y = None
        if self.num_classes:
            self.grid_columns = max(1, n_fixed // self.num_classes)
            fixed = fixed[: self.grid_columns].repeat(self.num_classes, 1)  # (classes * cols, nz)
            fixed_y = torch.arange(self.num_classes).repeat_interleave(self.grid_columns)  # (classes * cols,)
        self.register_buffer("fixed_z", fixed)
        self.register_buffer("fixed_y", fixed_y)  # None (not in the state dict) when unconditional
        for c in COUNTERS:
            setattr(self, c, 0)
        self.images_last_iteration = 0  # real images of the latest iteration, all ranks (kimg cadences)
        self._pending_rng: list | dict | None = None
        self.save_hyperparameters(ignore=["generator", "discriminator", "loss", "optimizer", "d_augment"])

    # -- sampling -------------------------------------------------------------------------------
    def sample_z(self, n: int, generator: torch.Generator | None = None, device=None) -> Tensor:
        """Latent batch (n, nz) from the prior."""
        return sample_latent(n, self.nz, self.latent, generator, device)

    @torch.no_grad()
    def generate(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """G_ema(z[, y]) when EMA is on, else G(z[, y]), in eval mode (BatchNorm running
        statistics); images in [-1, 1], float32. ``y`` (B,): class labels of a conditional G."""
        net = self.G_ema if self.G_ema is not None else self.G
        was_training = net.training
        net.eval()
        try:
            return generator_call(net, z.to(self.device), None if y is None else y.to(self.device)).float()
        finally:
            net.train(was_training)

    def ema_weight(self, batch_images: int) -> float:
        """1 - beta for one EMA step, beta = 0.5 ** (batch / half-life in images), the half-life
        ramped up with ``images_seen`` when ``ema_rampup`` is set."""
        half_life = self.ema_half_life_kimg * 1000
        if self.ema_rampup is not None:
            half_life = min(half_life, self.images_seen * self.ema_rampup)
        return 1.0 - 0.5 ** (batch_images / max(half_life, 1e-8))

    @torch.no_grad()
    def lerp_ema(self, weight: float | Tensor) -> None:
        """G_ema <- G_ema + weight * (G - G_ema); buffers (BatchNorm statistics) are copied.
        ``weight`` may be a 0-d device tensor (the CUDA-graph path fills it before each replay).
        Same on every rank, as G is."""
        if not self._ema_tensors:  # listed once: no walk over the parameters per iteration
            self._ema_tensors = (
                list(self.G_ema.parameters()),
                list(self.G.parameters()),
                list(self.G_ema.buffers()),
                list(self.G.buffers()),
            )
        ema_params, params, ema_buffers, buffers = self._ema_tensors
        torch._foreach_lerp_(ema_params, params, weight)
        if buffers:
            torch._foreach_copy_(ema_buffers, buffers)

    def update_ema(self, batch_images: int) -> None:
        """One EMA step after a G update on ``batch_images`` images (all ranks)."""
        self.lerp_ema(self.ema_weight(batch_images))

    # -- data parallelism (ganlab.strategy.GANDDPStrategy) ------------------------------------------
    def ddp_networks(self) -> dict[str, nn.Module]:
        """The networks trained with gradients, each wrapped in its own DDP by the strategy."""
        return {"G": self.G, "D": self.D}

    def use_ddp(self, wrappers: dict[str, nn.Module]) -> None:
        """Call G and D through these wrappers (``{}``: directly)."""
        self._ddp = dict(wrappers)

    @property
    def g_net(self) -> nn.Module:
        return self._ddp.get("G", self.G)

    @property
    def d_net(self) -> nn.Module:
        return self._ddp.get("D", self.D)

    # -- training -------------------------------------------------------------------------------
    def _make_optimizer(self, name: str, params) -> torch.optim.Optimizer:
        # A CUDA graph replays the optimizer step too: its step counter must live on the GPU.
        extra = {"capturable": True} if self.cuda_graph and self.device.type == "cuda" else {}
        return self.optim.make(name, params, **extra)

    def configure_optimizers(self):
        return [
            self._make_optimizer("g", self.G.parameters()),
            self._make_optimizer("d", self.D.parameters()),
        ]

    def apply_optimizer_settings(self) -> None:
        """Set every optimizer hyperparameter (lr, betas, eps, ...) from this run's configuration.
        A resumed run gets the checkpoint's optimizer state, param groups included: without this
        a new ``optimizer.d.lr`` or ``optimizer.g.betas`` would be silently ignored. No-op otherwise."""
        for name, opt in zip(("g", "d"), self.trainer.optimizers):
            fresh = self._make_optimizer(
                name, [torch.zeros(1, device=self.device, requires_grad=True)]
            ).defaults
            for group in opt.param_groups:
                group.update({k: v for k, v in fresh.items() if k in group})

    def schedule_lr(self, images_per_iteration: int) -> None:
        """The learning rates of this iteration under ``optimizer.schedule_g/_d`` (a function of
        ``iterations`` / the run's planned iterations; nothing to do for constant schedules)."""
        if not self.optim.scheduled:
            return
        if self._planned_iterations is None:
            total = planned_iterations(self.trainer, images_per_iteration)
            if not math.isfinite(total):
                raise UsageError(
                    "a linear learning-rate schedule decays to 0 at the run's end, and this run has no "
                    "end: set train.max_kimg, train.max_iterations or trainer.max_epochs"
                )
            self._planned_iterations = total
        self.optim.apply(self.trainer.optimizers, self.iterations / self._planned_iterations)

    def on_train_start(self) -> None:
        # Per-rank streams start here, right before the first batch, so that nothing Lightning does
        # while restoring (loggers, loaders) shifts them: a checkpoint's states, or fresh streams
        # from (seed, rank). The networks were built before, from the same seed on every rank.
        rank, world = self.trainer.global_rank, self.trainer.world_size
        if self._pending_rng is not None:
            restore_rank_state(self._pending_rng, self.seed, rank, world)
            self._pending_rng = None
        else:
            seed_rank_streams(self.seed, rank)
        self._g_params = [p for p in self.G.parameters() if p.requires_grad]
        self._ema_tensors = ()
        self.apply_optimizer_settings()
        if self.cuda_graph:
            self.graphed = self._build_graphed()

    def states_replaced(self) -> None:
        """Call after loading weights or optimizer states mid-run (``ganlab.guard`` rollback):
        parameter lists and captured CUDA graphs that hold the old tensors are rebuilt."""
        self._ema_tensors = ()
        if self.graphed is not None:
            self.graphed.reset()

    def _build_graphed(self) -> CUDAGraphIteration:
        check_capturable(self, self.trainer)
        opt_g, opt_d = (o.optimizer for o in self.optimizers())  # raw: replays bypass Lightning

        def raw_backward(loss: Tensor, inputs: list[Tensor] | None = None) -> None:
            loss.backward(inputs=inputs)

        bf16 = "bf16" in str(self.trainer.precision)
        graphed = CUDAGraphIteration(
            lambda real, plan: self.iteration(
                real, plan, opt_g, opt_d, raw_backward, graphed.ema_weight if self.G_ema is not None else None
            )[0],
            self.device,
            autocast_dtype=torch.bfloat16 if bf16 else None,
            capture=self.device.type == "cuda",
        )
        return graphed

    def plan(self) -> Plan:
        """This iteration's updates, from the counters alone (no device values)."""
        it = self.iterations
        d_r1 = ()
        if it % self.d_every == 0:
            d_r1 = tuple(self.loss.r1_due(self.d_updates + j) for j in range(self.d_steps_per_g))
        return Plan(d_r1=d_r1, g=it % self.g_every == self.g_every - 1)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        labels = None
        if self.num_classes:
            real_all, labels = batch  # (k*B, C, H, W) in [-1, 1], (k*B,) int64
        else:
            real_all = batch[0] if isinstance(batch, (list, tuple)) else batch  # (k*B, C, H, W) in [-1, 1]
        real_all = real_all.contiguous(memory_format=self.memory_format)
        world = self.trainer.world_size
        plan = self.plan()
        for aug in self.d_augment:
            if isinstance(aug, ScheduledAugment):
                aug.images_seen = self.images_seen  # schedules (instance-noise annealing)
        g_images = real_all.shape[0] // self.d_steps_per_g * world
        self.schedule_lr(real_all.shape[0] * world)
        if self.graphed is not None:
            if self.G_ema is not None and plan.g:
                self.graphed.ema_weight.fill_(self.ema_weight(g_images))
            logs = self.graphed(real_all, plan)
            done, skipped = len(plan.d_r1), 0
        else:
            opt_g, opt_d = self.optimizers()
            ema = self.ema_weight(g_images) if self.G_ema is not None else None
            logs, done, skipped = self.iteration(
                real_all, plan, opt_g, opt_d, self.manual_backward, ema, labels
            )
        self.d_updates += done
        self.d_skipped += skipped
        self.g_updates += int(plan.g)
        self.iterations += 1
        self.images_last_iteration = real_all.shape[0] * world
        self.images_seen += self.images_last_iteration
        self.stats.add(logs)  # on the device: no host sync, no logger call per iteration
        if due(self.trainer.log_every_n_steps, self.iterations):
            self.log_stats()

    def iteration(
        self,
        real_all: Tensor,
        plan: Plan,
        opt_g,
        opt_d,
        backward: Callable[..., None],
        ema_weight: float | Tensor | None,
        labels: Tensor | None = None,
    ) -> tuple[dict[str, Tensor], int, int]:
        """One GAN iteration's math: returns (statistics as 0-d device tensors, D updates done,
        D updates skipped). The eager path passes Lightning's optimizers and ``manual_backward``;
        the CUDA-graph path (``ganlab.cuda_graph``) the raw optimizers and ``Tensor.backward``,
        and captures this very function. Nothing here reads a device value on the host, except
        the adaptive D skip, which the graph path refuses."""
        k = self.d_steps_per_g
        reals = real_all.chunk(k) if k > 1 else (real_all,)  # k minibatches (B, C, H, W)
        ys = labels.chunk(k) if labels is not None and k > 1 else (labels,) * k  # (B,) each, or None
        b = reals[0].shape[0]
        G = self.g_net
        z = self.sample_z(b, device=real_all.device)
        with torch.set_grad_enabled(plan.g):  # no graph through G on D-only iterations
            fake = generator_call(G, z, ys[-1])  # (B, C, H, W): the last D update's fakes and the G update's

        logs: dict[str, Tensor] = {}
        done = skipped = 0
        # G's parameters need no toggling: D's loss sees fakes detached from G's graph.
        for j in range(len(plan.d_r1)):
            if j < k - 1:  # Algorithm 1: fresh z (and a fresh real minibatch) for each D update
                with torch.no_grad():
                    fake_j = generator_call(G, self.sample_z(b, device=real_all.device), ys[j])
            else:
                fake_j = fake.detach()
            loss_d, stats = self.loss.d_loss(
                self.d_input, reals[j], fake_j, step=self.d_updates + j, labels=ys[j]
            )
            logs["loss_d"] = loss_d.detach()
            logs.update(stats)
            if self._skip_d(stats):
                skipped += 1
                continue
            opt_d.zero_grad(set_to_none=True)
            backward(loss_d)
            opt_d.step()
            done += 1
        if plan.g:
            with no_sync(self.d_net):  # D's forward here must not all-reduce D's gradients
                loss_g, _ = self.loss.g_loss(self.d_input, reals[-1], fake, labels=ys[-1])
            opt_g.zero_grad(set_to_none=True)
            # Gradients for G's parameters only: D's weight gradients are not computed at all,
            # without walking the parameters to toggle requires_grad (Lightning's toggle_optimizer).
            backward(loss_g, inputs=self._g_params)
            opt_g.step()
            logs["loss_g"] = loss_g.detach()
            if ema_weight is not None:
                self.lerp_ema(ema_weight)
        return logs, done, skipped

    def on_train_epoch_end(self) -> None:
        self.log_stats()  # the end of a short run is logged too

    def log_stats(self) -> None:
        """Hand the accumulated statistics to the loggers (one device-to-host copy), as
        ``train/<name>`` at step ``iterations``, averaged over ranks; also into
        ``trainer.callback_metrics`` for the progress bar, sweepers and ``ganlab.train``'s result."""
        means = self.stats.flush(reduce=lambda t: self.trainer.strategy.reduce(t, reduce_op="mean"))
        if not means:
            return
        if "d_acc_real" in means:  # derived here, on the host, rather than on the device every iteration
            means["d_acc"] = (means["d_acc_real"] + means["d_acc_fake"]) / 2
        values = {f"train/{k}": v for k, v in means.items()}
        values["train/images_seen"] = float(self.images_seen)
        values["train/lr_g"], values["train/lr_d"] = (
            float(o.param_groups[0]["lr"]) for o in self.trainer.optimizers
        )
        values["train/iterations"] = float(self.iterations)
        for logger in self.loggers:
            logger.log_metrics(values, step=self.iterations)
        self.trainer.callback_metrics.update({k: torch.tensor(v) for k, v in values.items()})

    def d_input(self, *images: Tensor, y: Tensor | None = None) -> Tensor:
        """D on augmented inputs: D(aug(x)), D(aug(x), y) for a conditional D, or
        D(aug(a), aug(b)) for a pair discriminator."""
        for aug in self.d_augment:
            images = tuple(aug(x) for x in images)
        return self.d_net(*images) if y is None else self.d_net(*images, y)

    def _skip_d(self, stats: dict[str, Tensor]) -> bool:
        if self.d_skip_accuracy is None:
            return False
        acc = (stats["d_acc_real"] + stats["d_acc_fake"]) / 2
        # Every rank must take the same decision, or DDP's gradient all-reduce would hang.
        acc = self.trainer.strategy.reduce(acc, reduce_op="mean")
        return bool(acc > self.d_skip_accuracy)

    # -- checkpoints ----------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["ganlab"] = {
            "counters": {c: getattr(self, c) for c in COUNTERS},
            "rng": all_rank_states(),  # every rank's stream, indexed by global rank
            "config": self.run_config,
            "optim": self.optim.state_dict(),
            # The W&B run to continue on resume (ganlab.loggers.wandb_logger reads it back).
            "wandb_id": next((lg.version for lg in self.loggers if isinstance(lg, WandbLogger)), None),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("ganlab")
        if state is None:
            raise KeyError("not a ganlab checkpoint: it has no 'ganlab' section")
        for c, v in state["counters"].items():
            setattr(self, c, v)
        self._pending_rng = state["rng"]
        self.optim.load_state_dict(state.get("optim", {}))


def generator_call(G: nn.Module, z: Tensor, y: Tensor | None) -> Tensor:
    """G(z), or G(z, y) with class labels y (B,) for a conditional G."""
    return G(z) if y is None else G(z, y)


def check_conditional(generator: nn.Module, discriminator: nn.Module, loss: GANLoss, num_classes: int,
                      class_names: list[str] | None) -> None:  # fmt: skip
    """The networks and the loss agree on the number of classes (0: unconditional)."""
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for num_classes={num_classes}")
    g, d = getattr(generator, "num_classes", 0), getattr(discriminator, "num_classes", 0)
    if g != num_classes or d != num_classes:
        raise UsageError(
            f"the data has {num_classes} classes (data.conditional) but G is built for {g} and D for {d}: "
            "pass model.num_classes to both (model=dcgan and model=resnet do), or set data.conditional="
            f"{'false' if num_classes == 0 else 'true'}"
        )
    if num_classes and loss.pairwise:
        raise UsageError(
            "a pair discriminator (loss=siamese) has no class-conditional form: set data.conditional=false"
        )
    aux = getattr(discriminator, "aux_classes", 0)
    if loss.acgan_weight > 0 and not aux:
        raise UsageError(
            "loss.acgan_weight > 0 needs D's auxiliary classifier: set "
            "model.discriminator.aux_classifier=true (and data.conditional=true)"
        )
    if aux and loss.acgan_weight == 0:
        log.warning(
            "model.discriminator.aux_classifier=true but loss.acgan_weight=0: the classifier is not trained"
        )
