"""What other callbacks need of the checkpoint callback: the guard looks before it saves, and a
preemption signal or Ctrl-C asks it to save now. A protocol, so that they need not import the
class (``ganlab.callbacks.checkpoint.GANCheckpoint`` is the one ganlab ships)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class CadenceSaver(Protocol):
    """Saves on a GAN cadence (``every_n_iterations``, ``every_kimg``) and on request."""

    every_n_iterations: int
    every_kimg: float | None
    last_model_path: str  # the newest file it wrote

    def save_now(self, trainer) -> None: ...
