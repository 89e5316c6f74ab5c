"""The run's progress in GAN units: iterations, real images shown to D and updates done.

Lightning's ``global_step`` counts optimizer steps: two per iteration with two optimizers,
unevenly with ``d_every``/``g_every``; every cadence in ganlab counts these instead. Kept in
``checkpoint["ganlab"]["counters"]`` (``ganlab.checkpoint.format``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

COUNTERS = ("iterations", "images_seen", "d_updates", "g_updates", "d_skipped")


@dataclass
class TrainingProgress:
    """GAN iterations, real images shown to D (all ranks) and updates done; ``last_images``:
    the real images of the latest iteration (all ranks), for the kimg cadences."""

    iterations: int = 0
    images_seen: int = 0
    d_updates: int = 0
    g_updates: int = 0
    d_skipped: int = 0
    last_images: int = field(default=0, compare=False)

    def advance(self, images: int, d_done: int, d_skipped: int, g_done: int) -> None:
        self.iterations += 1
        self.images_seen += images
        self.last_images = images
        self.d_updates += d_done
        self.d_skipped += d_skipped
        self.g_updates += g_done

    def state_dict(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if k in COUNTERS}

    def load_state_dict(self, state: dict[str, int]) -> None:
        for k in COUNTERS:
            setattr(self, k, int(state.get(k, 0)))
