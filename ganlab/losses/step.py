"""What an objective reads: one ``Step`` per update, built by the training module from the
schedule's plan (in the manner of stylegan2-ada's ``accumulate_gradients(phase, ...)``), and the
lazy regularisers a loss declares (``LazyTerm``), which the plan alone decides.

A loss's two objectives are ``d_loss(D, step)`` and ``g_loss(D, step)``. Everything they may
need is on the step: the images, the labels, the latents, G (for terms that generate again,
such as the path-length penalty), which lazy terms are due, and which part of the objective this
update takes (``phase``). A new lazy regulariser is a ``LazyTerm`` in the loss's ``lazy_terms``
and its computation where ``step.due(name)``: nothing else changes.

A loss written for the signatures of ganlab 0.2 (``d_loss(D, real, fake, step, labels)``,
``g_loss(D, real, fake, labels, z)``) is adapted by ``legacy_adapter``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

log = logging.getLogger(__name__)

#: ``Step.phase``: the main objective and the due lazy terms in one update ("both", ganlab's
#: default), or, with ``GANLoss.separate_lazy`` (stylegan2-ada's layout), the main objective
#: ("main") and the due terms in an optimizer step of their own ("reg").
PHASES = ("both", "main", "reg")


@dataclass(frozen=True)
class LazyTerm:
    """A regulariser computed every ``every``-th update of ``network`` ("d" or "g") and scaled by
    ``every`` (lazy regularisation, Karras et al., "Analyzing and Improving the Image Quality of
    StyleGAN", CVPR 2020, section 3.1). D's terms count D updates, G's count G updates."""

    name: str
    network: str
    every: int

    def due(self, update: int) -> bool:
        return update % self.every == 0


@dataclass
class Step:
    """One update's inputs. ``real`` (B, C, H, W) in [-1, 1]; ``fake`` (B, C, H, W): detached from
    G's graph in D's updates, attached in G's; ``labels`` (B,) int64 of a conditional run (the
    fakes are drawn for the reals' labels), else None; ``z`` (B, nz): the latents ``fake`` came
    from; ``G``: the generator (its DDP wrapper under DDP), for terms that generate again;
    ``due``: the names of the lazy terms due on this update; ``phase``: see ``PHASES``."""

    real: Tensor
    fake: Tensor
    labels: Tensor | None = None
    z: Tensor | None = None
    G: Callable[..., Any] | None = None
    terms: frozenset[str] = field(default_factory=frozenset)
    phase: str = "both"

    def due(self, name: str) -> bool:
        """Whether lazy term ``name`` is computed in this update."""
        return name in self.terms and self.phase != "main"

    @property
    def main(self) -> bool:
        """Whether this update takes the main adversarial objective."""
        return self.phase != "reg"


def _legacy(method: Callable) -> bool:
    """A ``d_loss``/``g_loss`` of ganlab 0.2: it takes ``real`` (and ``fake``), not a ``Step``."""
    return "real" in inspect.signature(method).parameters


class LegacyLoss:
    """A loss whose ``d_loss``/``g_loss`` take ganlab 0.2's arguments, called through ``Step``s.
    Every other attribute is the wrapped loss's."""

    def __init__(self, loss: Any) -> None:
        self.__dict__["_loss"] = loss

    def __getattr__(self, name: str) -> Any:
        if name == "_loss":  # unpickling (ddp_spawn) asks before __dict__ is filled
            raise AttributeError(name)
        return getattr(self._loss, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._loss, name, value)

    def d_loss(self, D, step: Step):
        if not _legacy(type(self._loss).d_loss):
            return self._loss.d_loss(D, step)
        return self._loss.d_loss(D, step.real, step.fake, labels=step.labels)

    def g_loss(self, D, step: Step):
        if not _legacy(type(self._loss).g_loss):
            return self._loss.g_loss(D, step)
        params = inspect.signature(type(self._loss).g_loss).parameters
        extra = {"z": step.z} if "z" in params else {}
        return self._loss.g_loss(D, step.real, step.fake, labels=step.labels, **extra)

    def __repr__(self) -> str:
        return f"LegacyLoss({self._loss!r})"


def legacy_adapter(loss: Any) -> Any:
    """``loss`` itself, or wrapped in ``LegacyLoss`` when it overrides ``d_loss`` or ``g_loss``
    with ganlab 0.2's signature (said once in the log, with how to update it)."""
    old = [name for name in ("d_loss", "g_loss") if _legacy(getattr(type(loss), name))]
    if not old:
        return loss
    log.warning(
        "%s.%s take(s) ganlab 0.2's arguments (D, real, fake, ...): it still works; to update, write "
        "d_loss(self, D, step) / g_loss(self, D, step) and read step.real, step.fake, step.labels, step.z "
        "(ganlab.losses.step.Step)", type(loss).__name__, "/".join(old),
    )  # fmt: skip
    return LegacyLoss(loss)
