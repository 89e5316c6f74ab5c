"""A callback for the DDP tests, loaded into `python -m ganlab.train` runs through
`+callbacks.probe._target_=tests.probes.RankProbe` (with the repository on PYTHONPATH).

Each rank writes `probe_rank<R>.jsonl`: per iteration, a digest of the z the step is about to draw
(peeked from a copy of the global RNG, which is left untouched) and digests of G, G_ema and D
after the step's updates, and of G's BatchNorm running statistics, after every callback before it
(so after an evaluation at that iteration).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import lightning as L
import torch

from ganlab.doctor.base import Ago, Clause, Condition, have


def digest(tensors) -> str:
    h = hashlib.sha1()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class RankProbe(L.Callback):
    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)
        self._z = None

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        b = trainer.datamodule.batch_size
        with torch.random.fork_rng(devices=[]):
            self._z = digest([module.prior.sample(b)])

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        row = {
            "iteration": module.progress.iterations,
            "z": self._z,
            "G": digest(module.G.parameters()),
            "D": digest(module.D.parameters()),
            "G_ema": digest(module.G_ema.parameters()) if module.G_ema is not None else None,
            "G_buffers": digest(b for b in module.G.buffers() if b.is_floating_point()),
        }
        self.dirpath.mkdir(parents=True, exist_ok=True)
        with open(self.dirpath / f"probe_rank{trainer.global_rank}.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")


class DoctorView(L.Callback):
    """Each rank writes ``doctor_rank<R>.jsonl``: per iteration, what its training doctor holds
    (every condition's tracker state) and the conditions in the run's history, after the doctor
    ran. The ranks must not differ."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        from ganlab.callbacks.doctor import Doctor

        doctor = next(cb for cb in trainer.callbacks if isinstance(cb, Doctor))
        row = {"iteration": module.progress.iterations, "conditions": module.history.conditions,
               "trackers": {k: t.state_dict() for k, t in doctor.trackers.items()}}  # fmt: skip
        self.dirpath.mkdir(parents=True, exist_ok=True)
        with open(self.dirpath / f"doctor_rank{trainer.global_rank}.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")


class LossAbove(Condition):
    """A seventh condition, for the doctor's extension test: G's loss above ``threshold`` (a
    condition is this class and one entry in ``callbacks.doctor.conditions``)."""

    cause = "a test condition"
    references = {"ref/loss_g": Ago("train/loss_g")}

    def __init__(self, threshold: float, patience: int) -> None:
        super().__init__(patience)
        self.threshold = threshold

    def clauses(self, s):
        if not have(s, "train/loss_g"):
            return None
        return [Clause("train/loss_g", s["train/loss_g"], ">", self.threshold)]

    def clear(self, s):
        return s["train/loss_g"] <= self.threshold if have(s, "train/loss_g") else None

    def evidence(self, s):
        return {"loss_g": s["train/loss_g"], "loss_g_before": s.get("ref/loss_g", float("nan"))}

    def fix(self, ctx):
        return [f"optimizer.g.lr={ctx.config['optimizer']['g']['lr'] / 2}"]
