"""A deterministic, DDP-sharding, resumable training loader.

Lightning saves ``state_dict()`` of a loader that has one (``_Stateful``) in each checkpoint
and calls ``load_state_dict`` before iterating on resume; sized loaders are not pre-fetched,
so the batches this loader has yielded are exactly the batches the training loop consumed.
Resuming from a mid-epoch checkpoint therefore continues with the very next batch.
"""

from __future__ import annotations

import signal
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler

STOP_SIGNALS = ("SIGTERM", "SIGINT", "SIGUSR1", "SIGUSR2")


def ignore_stop_signals(worker_id: int | None = None) -> None:
    """``worker_init_fn`` of every ganlab DataLoader: its workers ignore the signals that ask a run
    to stop. A signal sent to the whole process group (SLURM at a time limit or ``scancel``,
    ``timeout``, ``kill -- -PGID``, Ctrl-C) reaches the workers too: TERM, USR1 and USR2 kill a
    worker by default (torch's own SIGTERM handler re-raises unless the parent sent it), and the
    main process then fails with "DataLoader worker (pid N) is killed by signal" before it can
    write its preemption checkpoint. The main process decides (``ganlab.callbacks.preemption``); workers
    end with it (torch's workers exit when their parent is gone)."""
    for name in STOP_SIGNALS:
        signal.signal(getattr(signal, name), signal.SIG_IGN)


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class SeededItems(Dataset):
    """Keys ``epoch * n + i`` -> item ``i``, transformed under a torch seed made from
    (seed, epoch, i). Random augmentation (crop, flip) is then a pure function of the key:
    the same in any worker process, after a resume, and it never touches the global RNG."""

    def __init__(self, base: Dataset, seed: int) -> None:
        self.base, self.seed, self.n = base, seed, len(base)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key: int):
        epoch, i = divmod(int(key), self.n)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(hash((self.seed, epoch, i)) & 0x7FFF_FFFF_FFFF_FFFF)
            return self.base[i]


class EpochSampler(Sampler[int]):
    """Permutation drawn from ``seed + epoch`` (same on every rank), cut to a multiple of the
    world size and sharded ``perm[rank::world]`` (as DistributedSampler with drop_last).
    Yields keys ``epoch * n + i`` for ``SeededItems``. ``skip`` samples of this rank's shard
    are passed over once, for a mid-epoch resume."""

    def __init__(self, n: int, shuffle: bool = True, seed: int = 0) -> None:
        self.n, self.shuffle, self.seed = n, shuffle, seed
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.skip = 0  # a new epoch starts from its first batch
        self.epoch = epoch

    def _shard(self) -> list[int]:
        rank, world = _rank_world()
        if self.shuffle:
            perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        else:
            perm = torch.arange(self.n)
        usable = self.n - self.n % world
        return (perm[:usable][rank::world] + self.epoch * self.n).tolist()

    def __iter__(self):
        shard, skip = self._shard(), self.skip
        self.skip = 0
        return iter(shard[skip:])

    def __len__(self) -> int:
        return self.n // _rank_world()[1]


class ResumableLoader(DataLoader):
    """DataLoader over an ``EpochSampler`` whose position survives a checkpoint."""

    def __init__(
        self,
        dataset,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        seeded: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            SeededItems(dataset, seed) if seeded else dataset,
            batch_size=batch_size,
            sampler=EpochSampler(len(dataset), shuffle, seed),
            # Worker base seeds come from this generator, not the global RNG that z draws from.
            generator=torch.Generator().manual_seed(seed),
            worker_init_fn=ignore_stop_signals,
            **kwargs,
        )
        self._yielded = 0

    def __iter__(self):
        sampler: EpochSampler = self.sampler  # type: ignore[assignment]
        self._yielded = sampler.skip // self.batch_size
        for batch in super().__iter__():
            self._yielded += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "batches": self._yielded, "batch_size": self.batch_size}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state.get("batch_size") != self.batch_size:
            raise RuntimeError(
                f"checkpoint was written with data.batch_size={state.get('batch_size')}, this run uses "
                f"{self.batch_size}; resume with the same batch size"
            )
        self.sampler.epoch = state["epoch"]
        self.sampler.skip = state["batches"] * self.batch_size
