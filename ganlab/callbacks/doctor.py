"""The training doctor's callback: reads the signals once per logging interval, runs the
conditions (``ganlab.doctor.conditions``), and says what it finds where a user looks.

On a condition's start: one log line naming it, since when, the evidence, the likely cause and
the overrides to type; a W&B alert (``run.alert``); a tag in the progress line while it holds;
an object in ``<run_dir>/doctor.jsonl``. On its end: one log line and one object. The signals go
to every logger under ``doctor/``. The trackers are checkpointed: after a kill and a resume an
open condition stays open and is not announced again, and ``doctor.jsonl`` loses the events the
killed run wrote after its checkpoint (the resumed run writes them again, once).

``act=true`` (off by default), the autopilot: on ``d_overpowers`` D's learning rate / 5 (once);
on ``d_memorises`` ADA switched on (once, when the run has none); on ``quality_regression`` the
run stops, keeping ``best.ckpt``. Each action is logged and written to ``doctor.jsonl``, and
resumes exactly (the rate scale and the added augmentation are part of the checkpoint).

Under DDP every rank decides alike: the signals are the logged means, already averaged over
ranks, FID is broadcast, the guard's flag is all-reduced; the doctor adds no collective.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import WandbLogger

from ganlab.callbacks.run_state import RunState
from ganlab.doctor.conditions import CONDITIONS, Condition, Tracker
from ganlab.doctor.fixes import ADA_ON, Context
from ganlab.doctor.probe import Probe
from ganlab.utils.errors import DivergenceError
from ganlab.utils.every_n import due

log = logging.getLogger("ganlab.doctor")

HISTORY = 64  # the running references keep at most this many values


class Doctor(L.Callback):
    """``warmup_iterations``: no condition starts before this iteration (early training is not a
    failure; divergence excepted). ``probe_size``: images in each of the fixed train and
    held-out slices D is scored on, every ``slices_every``-th logging interval (in between the
    signals hold the latest measurement, which Lightning keeps in ``callback_metrics``, so
    d_memorises' patience counts intervals, not measurements). ``conditions``: per-condition
    settings (thresholds, patience), e.g. ``{mode_collapse: {diversity: 0.4}}``; ``disable``:
    names to leave out."""

    def __init__(
        self,
        run_dir: str | None = None,
        warmup_iterations: int = 300,
        probe_size: int = 128,
        slices_every: int = 4,
        act: bool = False,
        conditions: dict[str, dict[str, Any]] | None = None,
        disable: list[str] | tuple[str, ...] = (),
    ) -> None:
        settings = dict(conditions or {})
        known = {c.name for c in CONDITIONS}
        unknown = (set(settings) | set(disable)) - known
        if unknown:
            raise ValueError(
                f"callbacks.doctor: unknown condition(s) {sorted(unknown)}; known: {sorted(known)}"
            )
        self.conditions: list[Condition] = []
        for cls in CONDITIONS:
            if cls.name in disable:
                continue
            opts = dict(settings.get(cls.name) or {})
            patience = opts.pop("patience", None)
            cond = cls(**opts)
            if patience is not None:
                cond.patience = int(patience)
            self.conditions.append(cond)
        self.run_dir = Path(run_dir) if run_dir else None
        self.warmup_iterations, self.probe_size, self.act = warmup_iterations, probe_size, act
        if slices_every < 1:
            raise ValueError(f"callbacks.doctor.slices_every must be >= 1, got {slices_every}")
        self.slices_every = slices_every
        self.trackers = {c.name: Tracker() for c in self.conditions}
        self.by_name = {c.name: c for c in self.conditions}
        self.refs: dict[str, list[float]] = {}  # running references (warm-up values, recent values)
        self.best: tuple[float, int] | None = None  # (best FID, its iteration)
        self.resumes: list[dict] = []  # resume_diff.json: the resumes of this run directory
        self.last_eval = -1
        self.rollbacks = 0
        self.acted: list[str] = []
        self.good_iteration: int | None = None  # of the newest checkpoint written while all was well
        self._guard = self._evaluation = None  # the callbacks whose findings the doctor reads
        self.config: dict = {}

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "trackers": {k: t.state_dict() for k, t in self.trackers.items()},
            "refs": self.refs, "best": self.best, "last_eval": self.last_eval,
            "rollbacks": self.rollbacks, "acted": self.acted, "good_iteration": self.good_iteration,
        }  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        for k, t in state.get("trackers", {}).items():
            if k in self.trackers:
                self.trackers[k].load_state_dict(t)
        self.refs = {k: list(v) for k, v in state.get("refs", {}).items()}
        self.best = tuple(state["best"]) if state.get("best") else None
        self.last_eval, self.rollbacks = int(state.get("last_eval", -1)), int(state.get("rollbacks", 0))
        self.acted, self.good_iteration = list(state.get("acted", [])), state.get("good_iteration")

    # -- set-up --------------------------------------------------------------------------------
    def on_train_start(self, trainer, module) -> None:
        self._guard = next((cb for cb in trainer.callbacks if type(cb).__name__ == "DivergenceGuard"), None)
        self._evaluation = next((cb for cb in trainer.callbacks if hasattr(cb, "last_result")), None)
        state = next((cb for cb in trainer.callbacks if isinstance(cb, RunState)), None)
        self.config = (state.config if state is not None else None) or {}  # what the fixes are chosen from
        if trainer.datamodule is not None and hasattr(trainer.datamodule, "probe_sets"):
            module.probe = Probe(trainer.datamodule.probe_sets(self.probe_size), self.slices_every)
            module.probe_every = trainer.log_every_n_steps
        if trainer.is_global_zero and self.run_dir is not None:
            self._drop_events_after(module.progress.iterations)
        diff = self.run_dir / "resume_diff.json" if self.run_dir is not None else None
        self.resumes = json.loads(diff.read_text()) if diff is not None and diff.is_file() else []

    def _drop_events_after(self, iteration: int) -> None:
        """A resumed run: the killed run's events after the checkpoint are written again by this one."""
        path = self.run_dir / "doctor.jsonl"
        if not path.is_file():
            return
        lines = path.read_text().splitlines()
        kept = [ln for ln in lines if ln.strip() and json.loads(ln)["iteration"] <= iteration]
        if len(kept) != len(lines):
            from ganlab.utils.atomic import write_text

            write_text(path, "".join(ln + "\n" for ln in kept))

    # -- the tick ------------------------------------------------------------------------------
    def signals(self, trainer, module) -> dict[str, float]:
        """This interval's means (train/*, doctor/*) and the derived and reference values."""
        s = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("train/", "doctor/"))}
        if "train/d_acc_real" in s:
            s["doctor/r_t"] = 2 * s["train/d_acc_real"] - 1  # E[sign D(real)], ADA's r_t
        if "doctor/r_train" in s and "doctor/r_v" in s:
            s["doctor/gap"] = s["doctor/r_train"] - s["doctor/r_v"]
        losses = [abs(s[k]) for k in ("train/loss_d", "train/loss_g") if k in s]
        if losses:
            recent = self.refs.get("loss", [])
            if recent:
                s["doctor/loss_spike"] = max(losses) / max(statistics.median(recent), 1e-8)
            self._remember("loss", max(losses), HISTORY)
        warm = module.progress.iterations <= self.warmup_iterations
        for name in ("g_grad_norm",):  # its level early in the run, for d_overpowers' evidence
            v = s.get(f"doctor/{name}")
            if v is not None and math.isfinite(v) and warm:
                self._remember(f"warm_{name}", v, HISTORY)
            if self.refs.get(f"warm_{name}"):
                s[f"ref/{name}"] = statistics.median(self.refs[f"warm_{name}"])
        # ADA's p and the fakes' diversity `patience` ticks ago: is p still rising, diversity not?
        for signal, name, cond in (
            ("train/ada_p", "ada_p", "augment_leak"),
            ("doctor/diversity", "diversity", "mode_collapse"),
        ):
            if signal in s and math.isfinite(s[signal]):
                window = self.refs.get(name, [])
                if window:
                    s[f"ref/{name}"] = window[0]
                patience = self.by_name[cond].patience if cond in self.by_name else 3
                self._remember(name, s[signal], patience + 1)
        return s

    def _remember(self, key: str, value: float, keep: int) -> None:
        values = self.refs.setdefault(key, [])
        values.append(value)
        del values[:-keep]

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        it = module.progress.iterations
        self._check_guard(trainer, module)
        self._check_evaluation(trainer, module)
        if not due(trainer.log_every_n_steps, it):
            return
        s = self.signals(trainer, module)
        if it > self.warmup_iterations:
            for cond in self.conditions:
                if getattr(cond, "per_evaluation", False) or cond.name == "divergence":
                    continue
                tracker = self.trackers[cond.name]
                if not tracker.active and any(self.trackers[e].active for e in cond.explained_by
                                              if e in self.trackers):  # fmt: skip
                    tracker.streak = 0
                    continue
                event = tracker.step(cond, s, self._at(module))
                if event:
                    self.announce(trainer, module, cond, event, s)
        derived = {k: v for k, v in s.items() if k in ("doctor/r_t", "doctor/gap", "doctor/loss_spike")}
        derived["doctor/conditions"] = float(sum(t.active for t in self.trackers.values()))
        for logger in trainer.loggers:
            logger.log_metrics(derived, step=it)

    def _at(self, module) -> tuple[int, float]:
        return module.progress.iterations, module.progress.images_seen / 1000

    def on_save_checkpoint(self, trainer, module, checkpoint: dict) -> None:
        """The newest snapshot written while no condition held: what a fix resumes from."""
        if not any(t.active for t in self.trackers.values()):
            self.good_iteration = module.progress.iterations

    def _good_ckpt(self, trainer) -> str | None:
        for cb in trainer.checkpoint_callbacks:
            name = getattr(cb, "filename", None)
            if self.good_iteration is not None and name and cb.dirpath:
                path = Path(cb.dirpath) / f"{name.format(iteration=self.good_iteration)}.ckpt"
                if path.is_file():
                    return str(path)
        return None

    def _check_guard(self, trainer, module) -> None:
        guard, cond = self._guard, self.by_name.get("divergence")
        if guard is None or cond is None:
            return
        if guard.rollbacks == self.rollbacks and not self.trackers[cond.name].active:
            return  # nothing new (every iteration: kept cheap)
        s = {
            "guard/diverged": float(guard.rollbacks > self.rollbacks),
            "guard/rollbacks": float(guard.rollbacks),
        }
        self.rollbacks = guard.rollbacks
        event = self.trackers[cond.name].step(cond, s, self._at(module))
        if event:
            self.announce(trainer, module, cond, event, s)

    def _check_evaluation(self, trainer, module) -> None:
        result = getattr(self._evaluation, "last_result", None)
        if not result or result["iteration"] == self.last_eval:
            return
        self.last_eval = int(result["iteration"])
        fid = float(result["fid"])
        if self.best is None or fid < self.best[0]:
            self.best = (fid, self.last_eval)
        s = {"val/fid": fid, "ref/best_fid": self.best[0], "ref/best_it": float(self.best[1])}
        for logger in trainer.loggers:
            logger.log_metrics({"doctor/fid_vs_best": fid / max(self.best[0], 1e-12)}, step=self.last_eval)
        cond = self.by_name.get("quality_regression")
        if cond is not None and self.last_eval > self.warmup_iterations:
            event = self.trackers[cond.name].step(cond, s, self._at(module))
            if event:
                self.announce(trainer, module, cond, event, s)

    def on_train_end(self, trainer, module) -> None:
        self._check_evaluation(trainer, module)  # an evaluation at the end (at_end=true)

    def on_exception(self, trainer, module, exception: BaseException) -> None:
        cond = self.by_name.get("divergence")
        if isinstance(exception, DivergenceError) and cond and not self.trackers[cond.name].active:
            tracker = self.trackers[cond.name]
            tracker.active, tracker.since = True, self._at(module)
            self.announce(trainer, module, cond, "start", {"guard/rollbacks": float(self.rollbacks)})

    # -- saying it -----------------------------------------------------------------------------
    def context(self, trainer, signals: dict[str, float] | None = None) -> Context:
        best = None
        for cb in trainer.callbacks:
            d = getattr(cb, "best_dirpath", None)
            if d is not None and (Path(d) / "best.ckpt").is_file():
                best = str(Path(d) / "best.ckpt")
        if best is None and self.best is not None:  # the best FID is the checkpoint a resume started from
            best = next((r["ckpt_path"] for r in self.resumes if r.get("iteration") == self.best[1]), None)
        return Context(self.config, best_ckpt=best, good_ckpt=self._good_ckpt(trainer),
                       signals=dict(signals or {}), resumes=self.resumes)  # fmt: skip

    def announce(self, trainer, module, cond: Condition, event: str, s: dict[str, float]) -> dict:
        it, kimg = self._at(module)
        tracker = self.trackers[cond.name]
        evidence = tracker.evidence if event == "start" else cond.evidence(s) if s else {}
        if event == "start" and not evidence:
            evidence = cond.evidence(s)
        since = tracker.since or (it, kimg)
        fix = cond.fix(self.context(trainer, s)) if event == "start" else []
        if event == "start":
            message = (
                f"{cond.name} since iteration {since[0]} ({since[1]:.1f} kimg): {cond.describe(evidence)}. "
                f"Likely cause: {cond.cause}." + (f" Try: {' '.join(fix)}" if fix else "")
            )
        else:
            message = f"{cond.name} ended at iteration {it} ({kimg:.1f} kimg): {cond.describe(evidence)}"
        record = {
            "condition": cond.name, "event": event, "iteration": it, "kimg": round(kimg, 3),
            "since_iteration": since[0], "since_kimg": round(since[1], 3),
            "evidence": {k: round(v, 5) for k, v in evidence.items()},
            "cause": cond.cause, "fix": fix, "message": message,
        }  # fmt: skip
        if event == "start" and self.act:
            action = self.autopilot(trainer, module, cond.name)
            if action:
                record["action"] = action
                message += f" Autopilot: {action}."
                record["message"] = message
        if trainer.is_global_zero:
            (log.warning if event == "start" else log.info)("doctor: %s", message)
            self._write(record)
            if event == "start":
                self._alert(trainer, cond.name, message)
        return record

    def _write(self, record: dict) -> None:
        if self.run_dir is None:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / "doctor.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def _alert(self, trainer, name: str, message: str) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                import wandb

                try:
                    logger.experiment.alert(title=f"ganlab doctor: {name}", text=message,
                                            level=wandb.AlertLevel.WARN, wait_duration=0)  # fmt: skip
                except Exception as e:  # noqa: BLE001  (an alert that fails must not stop training)
                    log.warning("W&B alert failed: %s", e)

    def progress_tag(self) -> str:
        """The progress line's tag while conditions hold, e.g. ``doctor: d_overpowers``."""
        active = [k for k, t in self.trackers.items() if t.active]
        return f"doctor: {','.join(active)}" if active else ""

    # -- the autopilot ---------------------------------------------------------------------------
    def autopilot(self, trainer, module, name: str) -> str | None:
        if name in self.acted:
            return None
        action = None
        if name == "d_overpowers":
            before = module.optim.base_lr("d")
            module.optim.rescale(0.2, ("d",), trainer, module)
            action = f"D's learning rate {before:.3g} -> {module.optim.base_lr('d'):.3g}"
        elif name == "d_memorises" and not any(type(a).__name__ == "ADA" for a in module.d_augment):
            module.add_augment("ganlab.augment.ADA", dict(ADA_ON))
            action = "ADA switched on (" + ", ".join(f"{k} {v}" for k, v in ADA_ON.items()) + ")"
        elif name == "quality_regression":
            trainer.should_stop = True
            best = self.context(trainer).best_ckpt
            action = f"stopped; the best weights are in {best}" if best else "stopped"
        if action:
            self.acted.append(name)
        return action
