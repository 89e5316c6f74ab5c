"""Per-rank random streams for training, and their capture in checkpoints.

Every rank draws its own latents, label flips and augmentation noise: after the networks are
built (same seed on every rank, so the initial weights agree), each rank's global generators are
re-seeded from ``(seed, rank)``. Checkpoints hold every rank's state, so an exact resume stays
exact per rank. Fixed-noise grids and evaluation latents use their own ``torch.Generator``s and
are not affected.
"""

from __future__ import annotations

import hashlib
import logging
import random
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


def rank_seed(seed: int, rank: int) -> int:
    """A 63-bit seed for ``rank``'s stream, derived from (seed, rank) by hashing, so that
    neighbouring seeds or ranks do not give overlapping or correlated streams."""
    digest = hashlib.sha256(f"ganlab-rank-stream:{int(seed)}:{int(rank)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def seed_rank_streams(seed: int, rank: int) -> None:
    """Seed torch (CPU and every CUDA device), numpy and ``random`` for this rank."""
    s = rank_seed(seed, rank)
    torch.manual_seed(s)
    np.random.seed(s % 2**32)
    random.seed(s)


def rng_state() -> dict[str, Any]:
    """This process's global RNG states (torch, every CUDA device, numpy, python) in types that
    ``torch.load(weights_only=True)`` accepts, as Lightning loads checkpoints: numpy's uint32 key
    array becomes an int64 tensor, python's state tuple a list."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
        "python": list(random.getstate()),
    }
    if torch.cuda.is_available():
        state["torch.cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """The inverse of ``rng_state``; CUDA states are left out on a machine without CUDA."""
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "torch.cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["torch.cuda"])


def all_rank_states() -> list[dict[str, Any]]:
    """Every rank's ``rng_state()``, indexed by global rank (a collective under DDP: all ranks
    must call it, as they all do when Lightning dumps a checkpoint)."""
    state = rng_state()
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [state]
    states: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(states, state)
    return states


def restore_rank_state(
    saved: list[dict[str, Any]] | dict[str, Any], seed: int, rank: int, world: int
) -> None:
    """Restore this rank's stream from a checkpoint's ``all_rank_states()``. A checkpoint from a
    different world size cannot continue every stream: the ranks then start fresh streams from
    (seed, rank) and the resume is not bit-exact, which is logged."""
    if isinstance(saved, dict):  # checkpoints before per-rank streams held one state
        saved = [saved]
    if len(saved) == world:
        set_rng_state(saved[rank])
        return
    log.warning(
        "checkpoint holds RNG streams for %d rank(s), this run has %d: starting fresh per-rank streams "
        "(training continues, but not bit-identically to an uninterrupted run)",
        len(saved),
        world,
    )
    seed_rank_streams(seed, rank)
