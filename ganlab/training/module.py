"""The one LightningModule: it only schedules. Networks live in ``ganlab.models``, objectives in
``ganlab.losses``, each technique in its own module (``training.ema``, ``training.latent``,
``ganlab.augment``, ``training.optim``, ``speed.fast_paths``, ``speed.cuda_graph``,
``training.step_stats``, ``training.counters``); ``ganlab.training.build.gan_module`` builds it
from ``model.*``.

Per iteration, B the per-device batch and k = ``d_steps_per_g`` (the loader yields k*B images):
  z ~ prior (B, nz);  fake = G(z) (B, C, H, W), generated once for the last D update and G
  D phase on iterations ``it % d_every == 0``: k D updates, the j-th on (real_j, G(z_j)) with a
    fresh real minibatch and fresh z each (Goodfellow et al. 2014, Algorithm 1); the last one
    uses ``fake.detach()``
  G phase on iterations ``it % g_every == g_every - 1``: one G update on D(fake), then the EMA
Each update hands the loss one ``ganlab.losses.step.Step`` (the images, labels, latents, G, the
lazy terms the schedule's ``Plan`` made due, and the phase); fakes come from ``loss.generate``.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from ganlab.augment import Augment, AugmentPipeline
from ganlab.losses.base import GANLoss
from ganlab.losses.step import Step, legacy_adapter
from ganlab.models.base import call_generator
from ganlab.speed.cuda_graph import CUDAGraphIteration, graph_iteration
from ganlab.speed.fast_paths import Speed, backward, count_optimizer_steps, direct_updates
from ganlab.training.counters import TrainingProgress
from ganlab.training.ddp import no_sync
from ganlab.training.ema import EMA
from ganlab.training.history import History
from ganlab.training.latent import FixedNoise, LatentPrior
from ganlab.training.optim import GANOptimizers
from ganlab.training.schedule import Outcome, Plan, Schedule
from ganlab.training.step_stats import StepStats, publish
from ganlab.utils.every_n import due


class GANModule(L.LightningModule):
    """Alternating GAN training (Goodfellow et al. 2014, Algorithm 1). ``ema``: G's average, kept as
    ``G_ema`` (samples, metrics and generate use it). ``class_names``: a conditional run: batches
    are (images, labels), G(z, y) and D(x, y), each minibatch's fakes generated for its real labels.
    Statistics stay on the device and reach the loggers every ``trainer.log_every_n_steps``."""

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: GANLoss,
        optimizer: GANOptimizers,
        schedule: Schedule | None = None,
        prior: LatentPrior | None = None,
        fixed_noise: FixedNoise | None = None,
        ema: EMA | None = None,
        d_augment: Sequence[Augment] = (),
        speed: Speed | None = None,
        class_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.G, self.D, self.optim = generator, discriminator, optimizer
        self.loss = legacy_adapter(loss)  # a loss written for ganlab 0.2's signatures still works
        self.lazy_terms = self.loss.lazy_terms()  # what the schedule's plan decides
        if self.loss.separate_lazy:  # their own optimizer steps: stylegan2-ada's rate and beta correction
            self.optim.correct_for_lazy(self.lazy_terms)
        self.schedule, self.prior = schedule or Schedule(), prior or LatentPrior()
        self.ema, self.speed = ema, speed or Speed()
        self.class_names = list(class_names) if class_names else None
        self.num_classes = len(self.class_names or ())
        # A submodule, so it is checkpointed and moved with the module; no gradients, no optimizer.
        self.G_ema = copy.deepcopy(generator).eval().requires_grad_(False) if ema is not None else None
        self.d_augment = AugmentPipeline(d_augment)
        self.added_augments: list[dict[str, Any]] = []  # added mid-run (add_augment), checkpointed
        self.memory_format = self.speed.prepare(self.G, self.D, self.G_ema)
        z, y, self.grid_columns = (fixed_noise or FixedNoise()).draw(self.prior, self.num_classes)
        self.register_buffer("fixed_z", z)  # buffers: moved with the module and checkpointed
        self.register_buffer("fixed_y", y)  # None (not in the state dict) when unconditional
        self.progress, self.stats = TrainingProgress(), StepStats()
        self.history = History()  # what the callbacks share (ganlab.training.history); checkpointed
        self.graphed: CUDAGraphIteration | None = None  # set at train start with speed.cuda_graph
        # DDP wrappers of G and D (ganlab.training.ddp) and compiled ones (speed.compile); plain dicts,
        # so not submodules: state-dict keys stay "G.*", "D.*".
        self._ddp: dict[str, nn.Module] = {}
        self._compiled: dict[str, tuple[nn.Module, nn.Module]] = {}  # name -> (what, compiled)
        self._g_params: list[nn.Parameter] = []
        self.direct, self._updates = False, ()  # how updates run: set at train start
        self.probe, self.probe_every = None, 0  # attach_probe
        self.last_batch: tuple[Tensor, Tensor, Tensor | None] | None = None
        self.run_config: dict[str, Any] | None = None  # the resolved run configuration (ganlab.train)

    def attach_probe(self, probe, every: int) -> None:
        """A measurement (the training doctor's ``ganlab.doctor.Probe``) taken after every
        ``every``-th iteration on that iteration's last real minibatch and its fakes; its values
        join the step's statistics, so they are logged and put in the history at the log ticks."""
        self.probe, self.probe_every = probe, every

    @torch.no_grad()
    def generate(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """G_ema (or G) on z (and labels y) in eval mode: images in [-1, 1], float32."""
        net = self.G_ema if self.G_ema is not None else self.G
        was_training = net.training
        net.eval()
        try:
            return call_generator(net, z.to(self.device), None if y is None else y.to(self.device)).float()
        finally:
            net.train(was_training)

    # -- data parallelism: the protocol of ganlab.training.ddp.GANDDPStrategy --------------------------
    def ddp_networks(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}

    def use_ddp(self, wrappers: dict[str, nn.Module]) -> None:
        self._ddp = dict(wrappers)

    # -- training -------------------------------------------------------------------------------
    @property
    def capturable(self) -> bool:
        """Optimizers whose step counter lives on the GPU, for a CUDA graph that replays them."""
        return self.speed.cuda_graph and self.device.type == "cuda"

    def configure_optimizers(self):
        return self.optim.build(self.G.parameters(), self.D.parameters(), self.capturable)

    def add_augment(self, target: str, kwargs: dict[str, Any]) -> None:
        """Add an augmentation to D's inputs mid-run (the doctor's autopilot switching ADA on);
        kept in the checkpoint (``technique_state``) so that a resume rebuilds it before its
        buffers load (``restore_techniques``)."""
        import importlib

        module_name, _, cls = target.rpartition(".")
        aug = getattr(importlib.import_module(module_name), cls)(**kwargs).to(self.device)
        self.d_augment.append(aug)
        self.added_augments.append({"_target_": target, **kwargs})
        self.states_replaced()

    def technique_state(self) -> dict[str, Any]:
        """What the checkpoint keeps of the techniques beside their weights and buffers
        (``GanlabState.techniques``)."""
        augments = [dict(spec) for spec in self.added_augments]
        return {"added_augments": augments, "loss": self.loss.state_dict()}

    def restore_techniques(self, techniques: dict[str, Any]) -> None:
        """Rebuild what ``technique_state`` recorded, before the weights load (idempotent)."""
        for spec in techniques.get("added_augments", [])[len(self.added_augments) :]:
            spec = dict(spec)
            self.add_augment(spec.pop("_target_"), spec)
        self.loss.load_state_dict(techniques.get("loss") or {})

    def on_train_start(self) -> None:
        self._g_params = [p for p in self.G.parameters() if p.requires_grad]
        self.optim.reapply(self.trainer.optimizers, self.device, self.capturable)
        self.states_replaced()
        if self.speed.cuda_graph:
            self.graphed = graph_iteration(self, self.trainer)
        # The raw optimizers and Tensor.backward when nothing listens to Lightning's per-update hooks
        # (Lightning's step count advanced by hand), else its wrappers and manual_backward.
        self.direct, wrapped = direct_updates(self.trainer, self), self.optimizers()
        raw = (*(o.optimizer for o in wrapped), backward)
        self._updates = raw if self.direct else (*wrapped, self.manual_backward)

    def states_replaced(self) -> None:
        """After weights or optimizer states were loaded mid-run (``ganlab.callbacks.guard``'s rollback):
        parameter lists and captured CUDA graphs that hold the old tensors are made again."""
        if self.ema is not None:
            self.ema.forget()
        if self.graphed is not None:
            self.graphed.reset()

    def training_step(self, batch: Any, batch_idx: int) -> None:
        # -- 1. the batch and this iteration's plan (from the counters: no device value) --------
        if self.num_classes:
            real_all, labels = batch  # (k*B, C, H, W) in [-1, 1], (k*B,) int64
        else:
            real_all, labels = (batch[0] if isinstance(batch, (list, tuple)) else batch), None
        real_all = real_all.contiguous(memory_format=self.memory_format)
        images = real_all.shape[0] * self.trainer.world_size  # this iteration's, all ranks
        plan = self.schedule.plan(self.progress, self.lazy_terms)
        self.d_augment.on_iteration(self.progress)
        self.optim.on_iteration(self.trainer.optimizers, self.trainer, self.progress.iterations, images)
        g_images = images // self.schedule.d_steps_per_g
        # -- 2. the updates: k D updates, then G and the EMA (eager, or one CUDA graph replay) ----
        ema = self.ema.weight(self.progress.images_seen, g_images) if self.ema is not None else None
        if self.graphed is not None:
            if ema is not None and plan.g:
                self.graphed.ema_weight.fill_(ema)
            out = Outcome.planned(self.graphed(real_all, plan, labels), plan, self.loss.separate_lazy)
        else:
            out = self.iteration(real_all, plan, *self._updates, ema, labels)
        logs = out.logs
        # -- 3. bookkeeping: counters, ADA's observation, the doctor's probe, the statistics -------
        if self.direct or self.graphed is not None:
            count_optimizer_steps(self.trainer, out.optimizer_steps)
        self.progress.advance(images, out.d_done, out.d_skipped, out.g_done)
        self.d_augment.observe(logs, self.progress)
        logs = {**logs, **self.d_augment.stats()}
        if self.probe is not None and due(self.probe_every, self.progress.iterations):
            slices = due(self.probe_every * self.probe.slices_every, self.progress.iterations)
            logs.update(self.probe.measure(self, *self.last_batch, slices=slices))  # read at the log tick
        self.stats.add(logs, fresh=self.graphed is None)  # no host sync, no logger call per iteration
        if due(self.trainer.log_every_n_steps, self.progress.iterations):
            publish(self.stats, self.trainer, self.progress, self.history)

    def iteration(
        self,
        real_all: Tensor,
        plan: Plan,
        opt_g,
        opt_d,
        backward: Callable[..., None],
        ema_weight: float | Tensor | None,
        labels: Tensor | None = None,
    ) -> Outcome:
        """One iteration's math. The eager path passes Lightning's optimizers and
        ``manual_backward``; the CUDA-graph path the raw ones and ``Tensor.backward``, and captures
        this very function: nothing here reads a device value on the host but the adaptive D
        skip, which the graph path refuses."""
        k = self.schedule.d_steps_per_g
        reals = real_all.chunk(k) if k > 1 else (real_all,)  # k minibatches (B, C, H, W)
        ys = labels.chunk(k) if labels is not None and k > 1 else (labels,) * k  # (B,) each, or None
        b, device = reals[0].shape[0], real_all.device
        z = self.prior.sample(b, device=device)
        with torch.set_grad_enabled(plan.g):  # no graph through G on D-only iterations
            fake = self.loss.generate(self.net("G"), z, ys[-1])  # (B, C, H, W): the last D update's and G's
        # References only (no copy): a CUDA graph's capture keeps its static tensors here.
        self.last_batch = (reals[-1], fake.detach(), ys[-1])
        out = Outcome({})
        # -- D phase: k updates on (real_j, G(z_j)), Algorithm 1: fresh z and reals for each ------
        # G's parameters need no toggling: D's loss sees fakes detached from G's graph.
        for j, terms in enumerate(plan.d):
            z_j = z if j == k - 1 else self.prior.sample(b, device=device)
            if j < k - 1:
                with torch.no_grad():
                    fake_j = self.loss.generate(self.net("G"), z_j, ys[j])
            else:
                fake_j = fake.detach()
            self._d_update(Step(reals[j], fake_j, ys[j], z_j, None, terms), opt_d, backward, out)
        # -- G phase: one update on D(G(z)), then the EMA of G's weights ----------------------------
        if plan.g:
            self._g_update(Step(reals[-1], fake, ys[-1], z, None, plan.g_terms), opt_g, backward, out)
            if ema_weight is not None:
                self.ema.update(self.G_ema, self.G, ema_weight)
        return out

    def _d_update(self, step: Step, opt_d, backward: Callable[..., None], out: Outcome) -> None:
        """One D update and, as the loss lays them out, its due lazy terms."""
        for phase in self._phases(step.terms):
            step.phase = phase
            eager = phase != "main" and bool(step.terms)  # a gradient of a gradient: eager D
            loss_d, stats = self.loss.d_loss(functools.partial(self.d_input, eager=eager), step)
            out.logs.update(stats)
            if step.main:
                out.logs["loss_d"] = loss_d.detach()
                if self._skip_d(stats):
                    out.d_skipped += 1
                    return  # nor its lazy terms
            self._update(opt_d, backward, loss_d)
            out.count(step.main, "d")

    def _g_update(self, step: Step, opt_g, backward: Callable[..., None], out: Outcome) -> None:
        """One G update on D(G(z)) and, as the loss lays them out, its due lazy terms."""
        for phase in self._phases(step.terms):
            step.phase = phase
            step.G = self.net("G", eager=phase != "main" and bool(step.terms))  # terms that generate again
            with no_sync(self._ddp.get("D", self.D)):  # D's forward here must not all-reduce D's grads
                loss_g, stats = self.loss.g_loss(self.d_input, step)
            out.logs.update(stats)
            if step.main:
                out.logs["loss_g"] = loss_g.detach()
            # G's parameters only: D's weight gradients are not computed at all, without
            # walking the parameters to toggle requires_grad (Lightning's toggle_optimizer).
            self._update(opt_g, backward, loss_g, self._g_params)
            out.count(step.main, "g")

    def net(self, name: str, eager: bool = False) -> nn.Module:
        """G or D as an update calls it: its DDP wrapper under DDP, compiled with ``model.compile``
        unless ``eager`` (an update that takes a gradient of a gradient: ``Speed``)."""
        base = self._ddp.get(name, getattr(self, name))
        if not self.speed.compile or eager:
            return base
        if name not in self._compiled or self._compiled[name][0] is not base:
            self._compiled[name] = (base, self.speed.compiled(base))
        return self._compiled[name][1]

    def _phases(self, terms: frozenset[str]) -> tuple[str, ...]:
        """The updates a D or G step takes: one ("both"), or, with due lazy terms and a loss that
        separates them (``GANLoss.separate_lazy``), the main one and then the terms' ("reg")."""
        return ("main", "reg") if terms and self.loss.separate_lazy else ("both",)

    @staticmethod
    def _update(opt, backward: Callable[..., None], loss: Tensor, inputs: list | None = None) -> None:
        opt.zero_grad(set_to_none=True)
        backward(loss) if inputs is None else backward(loss, inputs=inputs)
        opt.step()

    def on_train_epoch_end(self) -> None:
        publish(self.stats, self.trainer, self.progress, self.history)  # the end of a short run is logged too

    def d_input(self, *inputs: Tensor, eager: bool = False) -> Tensor:
        """D on augmented inputs, called as the network is: D(aug(x)), D(aug(x), y) for a
        conditional D (y: labels (B,), not augmented), or D(aug(a), aug(b)) for a pair D."""
        n = len(inputs) if self.D.pairwise else 1  # the leading inputs that are images
        images, rest = inputs[:n], inputs[n:]
        for aug in self.d_augment:
            images = tuple(aug(x) for x in images)
        return self.net("D", eager)(*images, *rest)

    def _skip_d(self, stats: dict[str, Tensor]) -> bool:
        if self.schedule.d_skip_accuracy is None:
            return False
        acc = (stats["d_acc_real"] + stats["d_acc_fake"]) / 2
        # Every rank must take the same decision, or DDP's gradient all-reduce would hang.
        acc = self.trainer.strategy.reduce(acc, reduce_op="mean")
        return bool(acc > self.schedule.d_skip_accuracy)
