"""What runs when: each iteration's updates (``Schedule``, ``Plan``: D every ``d_every``-th
iteration, k D updates, G every ``g_every``-th), and how many iterations the run plans
(``planned_iterations``: for the progress line and the learning-rate schedules)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor

from ganlab.losses.step import LazyTerm
from ganlab.training.counters import TrainingProgress


@dataclass(frozen=True)
class Plan:
    """One iteration's updates: for each of its D updates, the lazy terms due on it (``d``; empty:
    no D phase), whether G updates (``g``) and the lazy terms due on that update (``g_terms``).
    Every lazy term a loss declares (``GANLoss.lazy_terms``: R1, the path-length penalty) is
    decided here once, from the counters. Hashable: the CUDA-graph path captures one graph per
    distinct plan."""

    d: tuple[frozenset[str], ...]
    g: bool
    g_terms: frozenset[str] = frozenset()


@dataclass
class Outcome:
    """What an iteration did: its statistics (0-d device tensors, no host sync), the D updates
    done and skipped, the G updates done, and the optimizer steps that lazy terms took on their
    own (``GANLoss.separate_lazy``)."""

    logs: dict[str, Tensor]
    d_done: int = 0
    d_skipped: int = 0
    g_done: int = 0
    reg_steps: int = 0

    def count(self, main: bool, network: str) -> None:
        """One optimizer step of ``network``: a main update, or a lazy term's own."""
        if not main:
            self.reg_steps += 1
        elif network == "d":
            self.d_done += 1
        else:
            self.g_done += 1

    @property
    def optimizer_steps(self) -> int:
        return self.d_done + self.g_done + self.reg_steps

    @classmethod
    def planned(cls, logs: dict[str, Tensor], plan: Plan, separate_lazy: bool) -> Outcome:
        """The outcome of ``plan`` run whole (a CUDA-graph replay: no D update is skipped)."""
        reg = sum(1 for t in plan.d if t) + bool(plan.g_terms) if separate_lazy else 0
        return cls(logs, len(plan.d), 0, int(plan.g), reg)


@dataclass(frozen=True)
class Schedule:
    """Which updates run when. ``d_steps_per_g``: D updates per D phase (k in Algorithm 1), each on
    a fresh real minibatch and fresh latents. ``d_every``/``g_every``: the D (G) phase runs on every
    n-th iteration (``d_every=2``: "train D every other step"). ``d_skip_accuracy``: skip a D update
    while D's accuracy on the current (real + fake) batch, averaged over all ranks, is above this
    (one host sync per D update; None: off)."""

    d_steps_per_g: int = 1
    d_every: int = 1
    g_every: int = 1
    d_skip_accuracy: float | None = None

    def optimizer_steps_per_iteration(self) -> float:
        """Optimizer steps an iteration takes on average (Lightning's ``global_step`` counts
        them, so ``trainer.max_steps`` is in these units), adaptive D skips aside."""
        return self.d_steps_per_g / self.d_every + 1 / self.g_every

    def plan(self, progress: TrainingProgress, terms: tuple[LazyTerm, ...] = ()) -> Plan:
        """This iteration's updates, from the counters alone (no device values); ``terms``: the
        loss's lazy regularisers."""
        it, d = progress.iterations, ()
        if it % self.d_every == 0:
            d = tuple(
                frozenset(t.name for t in terms if t.network == "d" and t.due(progress.d_updates + j))
                for j in range(self.d_steps_per_g)
            )
        g = it % self.g_every == self.g_every - 1
        g_terms = frozenset(t.name for t in terms if g and t.network == "g" and t.due(progress.g_updates))
        return Plan(d=d, g=g, g_terms=g_terms)


def planned_iterations(trainer, images_per_iteration: int) -> float:
    """The GAN iteration at which this run stops (inf when unbounded): the first of Lightning's
    limits and ``RunLength``'s. For the progress line and the learning-rate schedules.
    ``trainer.max_epochs`` allows epochs x batches iterations (one batch per iteration);
    ``trainer.max_steps`` counts optimizer steps, k / d_every + 1 / g_every of them per
    iteration (two with the defaults), so it allows that many times fewer iterations."""
    trainer.estimated_stepping_batches  # noqa: B018  (sizes the training loader: num_training_batches)
    total = math.inf
    epochs, batches = trainer.max_epochs, trainer.num_training_batches
    if epochs is not None and epochs >= 0 and math.isfinite(batches):
        total = max(epochs, 1) * batches
    if trainer.max_steps is not None and trainer.max_steps >= 0:
        schedule = getattr(trainer.lightning_module, "schedule", None)
        per = schedule.optimizer_steps_per_iteration() if schedule is not None else 1.0
        total = min(total, math.ceil(trainer.max_steps / per))
    for cb in trainer.callbacks:  # RunLength (ganlab.callbacks.run_length, a layer above: by its method)
        if callable(getattr(cb, "total_iterations", None)):
            total = min(total, cb.total_iterations(images_per_iteration))
    return total
