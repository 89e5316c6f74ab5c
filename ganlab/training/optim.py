"""G's and D's optimizers, each its own partial (``optimizer.g``, ``optimizer.d``: lr, betas and
the rest together), and their learning-rate schedules.

A schedule is a function of training progress, ``iterations / planned iterations``, not a
``torch.optim.lr_scheduler`` object: nothing to checkpoint (the factor follows from the
checkpointed iteration counter, so resume is exact) and nothing for Lightning to step (manual
optimization). Schedules:
  constant: the configured learning rate throughout.
  linear:   constant until ``decay_start`` (a fraction of the run), then linearly down to 0 at the
            run's end (as CycleGAN, pix2pix and the SNGAN/BigGAN reference code decay).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from ganlab.training.schedule import planned_iterations
from ganlab.utils.errors import UsageError, bad_setting

SCHEDULES = ("constant", "linear")
NETWORKS = ("g", "d")


class GANOptimizers:
    """The two optimizer factories and schedules, and the one place a learning rate changes.

    A network's rate at any moment is ``configured * scale * lazy * schedule factor``:
    ``configured`` the rate in its factory (``optimizer.g.lr``); ``scale`` the product of the
    factors applied mid-run by ``rescale`` (the divergence guard's rollbacks, the doctor's
    autopilot), checkpointed; ``lazy`` stylegan2-ada's correction for lazy regularisers that take
    optimizer steps of their own (``GANLoss.separate_lazy``): with a term every n updates the
    rate is multiplied by n / (n + 1) and Adam's betas raised to that power, so that n + 1 steps
    do what n would (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN",
    Appendix B); ``schedule factor`` the schedule's multiplier at the run's progress.

    Args:
        g, d: partial optimizers, called as ``g(params, **extra)``; each must carry ``lr``.
        schedule_g, schedule_d: ``constant`` or ``linear``.
        decay_start: fraction of the run after which ``linear`` starts to decay, in [0, 1).
    """

    def __init__(
        self,
        g: Callable[..., torch.optim.Optimizer],
        d: Callable[..., torch.optim.Optimizer],
        schedule_g: str = "constant",
        schedule_d: str = "constant",
        decay_start: float = 0.0,
    ) -> None:
        self.factories = {"g": g, "d": d}
        self.configured: dict[str, float] = {}
        for name, factory in self.factories.items():
            lr = factory.keywords.get("lr") if isinstance(factory, functools.partial) else None
            if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
                what = f"{name.upper()}'s learning rate must be a positive number"
                raise bad_setting(what, f"optimizer.{name}.lr", lr, f"optimizer.{name}.lr=2e-4")
            self.configured[name] = float(lr)
        self.schedules = {"g": schedule_g, "d": schedule_d}
        for name, schedule in self.schedules.items():
            if schedule not in SCHEDULES:
                raise UsageError(f"optimizer.schedule_{name} must be one of {SCHEDULES}, got {schedule!r}")
        if not 0 <= decay_start < 1:
            raise UsageError(f"optimizer.decay_start must be in [0, 1), got {decay_start!r}")
        self.decay_start = decay_start
        self.scheduled = any(s != "constant" for s in self.schedules.values())
        self.scales = {name: 1.0 for name in NETWORKS}
        self.lazy = {name: 1.0 for name in NETWORKS}
        self._planned: float | None = None  # the run's planned iterations, for the schedules

    @classmethod
    def adam(cls, lr: float = 2e-4, betas: tuple[float, float] = (0.5, 0.999), **kwargs) -> GANOptimizers:
        """Adam with the DCGAN settings for both networks (for scripts and tests)."""
        factory = functools.partial(torch.optim.Adam, lr=lr, betas=betas)
        return cls(factory, factory, **kwargs)

    def correct_for_lazy(self, terms) -> None:
        """``terms``: the ``LazyTerm``s that take optimizer steps of their own (see the class)."""
        for term in terms:
            self.lazy[term.network] = term.every / (term.every + 1)

    def base_lr(self, name: str) -> float:
        """Network ``name``'s rate before the schedule: configured x scale x lazy correction."""
        return self.configured[name] * self.scales[name] * self.lazy[name]

    def make(self, name: str, params: Iterable, **extra) -> torch.optim.Optimizer:
        """The optimizer of network ``name`` (``g`` or ``d``) at its base learning rate."""
        settings = {**extra, "lr": self.base_lr(name)}
        betas = self.factories[name].keywords.get("betas")
        if betas is not None:  # floats: torch's Adam refuses (0, 0.9), the SNGAN betas as typed
            settings["betas"] = tuple(float(b) ** self.lazy[name] for b in betas)
        return self.factories[name](params, **settings)

    def build(self, g_params: Iterable, d_params: Iterable, capturable: bool = False) -> list:
        """[G's optimizer, D's]; ``capturable``: the step counter lives on the GPU, as a CUDA
        graph that replays the optimizer step needs."""
        extra = {"capturable": True} if capturable else {}
        return [self.make("g", g_params, **extra), self.make("d", d_params, **extra)]

    def reapply(self, optimizers: list, device: torch.device, capturable: bool = False) -> None:
        """Set every hyperparameter (lr, betas, eps, ...) of ``optimizers`` from this run's
        settings. A resumed run gets the checkpoint's optimizer state, param groups included:
        without this a new ``optimizer.d.lr`` or ``optimizer.g.betas`` would be silently ignored."""
        extra = {"capturable": True} if capturable else {}
        for name, opt in zip(NETWORKS, optimizers):
            fresh = self.make(name, [torch.zeros(1, device=device, requires_grad=True)], **extra).defaults
            for group in opt.param_groups:
                group.update({k: v for k, v in fresh.items() if k in group})

    def rescale(self, factor: float, networks: tuple[str, ...], trainer, module) -> dict[str, float]:
        """Multiply the rates of ``networks`` by ``factor`` from now on (checkpointed), and set
        every param group to the rate of the current iteration. Returns the rates the optimizers
        now use, by network. The one path for a mid-run change of rate."""
        for name in networks:
            self.scales[name] *= factor
        self.reapply(trainer.optimizers, module.device, module.capturable)
        progress = module.progress
        self.on_iteration(trainer.optimizers, trainer, progress.iterations, progress.last_images)
        return {name: float(opt.param_groups[0]["lr"]) for name, opt in zip(NETWORKS, trainer.optimizers)}

    def on_iteration(self, optimizers: list, trainer, iterations: int, images_per_iteration: int) -> None:
        """The learning rates of this iteration under the schedules (a function of ``iterations``
        / the run's planned iterations); nothing to do for constant schedules."""
        if not self.scheduled:
            return
        if self._planned is None:
            total = planned_iterations(trainer, images_per_iteration)
            if not math.isfinite(total):
                raise UsageError(
                    "a linear learning-rate schedule decays to 0 at the run's end, and this run has no "
                    "end (optimizer.schedule_g/_d): set train.max_kimg, train.max_iterations or "
                    "trainer.max_epochs"
                )
            self._planned = total
        progress = iterations / self._planned
        for name, opt in zip(NETWORKS, optimizers):
            lr = self.base_lr(name) * self.factor(name, progress)
            for group in opt.param_groups:
                group["lr"] = lr

    def factor(self, name: str, progress: float) -> float:
        """The learning-rate multiplier of network ``name`` at ``progress`` in [0, 1]."""
        if self.schedules[name] == "constant" or progress <= self.decay_start:
            return 1.0
        return max(0.0, (1.0 - progress) / (1.0 - self.decay_start))

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps: the scales, so that a resumed run continues at the rates it
        was brought to (the configured rates times the scale), not the configured ones.
        ``lr_scale`` (both networks alike) is what checkpoints before per-network scales held."""
        return {"lr_scales": dict(self.scales)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        scales = state.get("lr_scales") or {name: state.get("lr_scale", 1.0) for name in NETWORKS}
        self.scales = {name: float(scales[name]) for name in NETWORKS}
