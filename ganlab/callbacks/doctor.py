"""The training doctor's callback: at each tick it reads the signals from the run's history
(``ganlab.training.history``), runs the conditions (``ganlab.doctor.conditions``, listed with
their thresholds in ``conf/callbacks/default.yaml``), and says what it finds where a user looks.

On a condition's start: one log line naming it, since when, the evidence, the likely cause and
the overrides to type; a W&B alert (``run.alert``); the condition in the history, which the
progress line shows while it holds; an object in ``<run_dir>/doctor.jsonl``. On its end: one log
line and one object. Its derived signals go to every logger under ``doctor/``. At the end (or a
divergence's stop), ``<run_dir>/doctor_margins.json``: each condition's closest approach to its
start test (``ganlab.doctor.base``), whether or not it started. The trackers are
checkpointed: after a kill and a resume an open condition stays open and is not announced again,
and ``doctor.jsonl`` loses the events the killed run wrote after its checkpoint (the resumed run
writes them again, once).

``act=true`` (off by default), the autopilot: each condition's ``act`` (D's learning rate / 5 on
``d_overpowers``, ADA switched on for ``d_memorises``, the run stopped on ``quality_regression``),
once per condition. Each action is logged and written to ``doctor.jsonl``, and resumes exactly
(the rate scale and the added augmentation are part of the checkpoint).

Under DDP every rank decides alike: the signals are the logged means, already averaged over
ranks, FID is broadcast, the guard's decision is all-reduced; the doctor adds no collective.
"""

from __future__ import annotations

import json
import logging
import statistics
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import WandbLogger

from ganlab.doctor.base import TICKS, Condition, Tracker
from ganlab.doctor.fixes import Context
from ganlab.doctor.probe import Probe
from ganlab.training.history import WINDOW
from ganlab.utils.errors import DivergenceError
from ganlab.utils.every_n import due

log = logging.getLogger("ganlab.doctor")

DERIVED = ("doctor/r_t", "doctor/gap", "doctor/loss_spike")  # computed here, logged under doctor/


class Doctor(L.Callback):
    """``warmup_iterations``: no condition starts before this iteration (early training is not a
    failure; divergence excepted). ``probe_size``: images in each of the fixed train and
    held-out slices D is scored on, every ``slices_every``-th logging interval (the ticks in
    between carry no slice signal, so d_memorises' patience counts measurements, not repeats of
    one). ``conditions``: name -> ``Condition`` (the yaml instantiates them with their
    thresholds); ``disable``: names to leave out."""

    def __init__(
        self,
        run_dir: str | None = None,
        warmup_iterations: int = 300,
        probe_size: int = 128,
        slices_every: int = 4,
        act: bool = False,
        conditions: dict[str, Condition] | None = None,
        disable: list[str] | tuple[str, ...] = (),
    ) -> None:
        conditions = {name: c for name, c in (conditions or {}).items() if c is not None}
        unknown = set(disable) - set(conditions)
        if unknown:
            raise ValueError(
                f"callbacks.doctor: unknown condition(s) {sorted(unknown)}; known: {sorted(conditions)}"
            )
        for name, cond in conditions.items():
            if cond.ticks not in TICKS:
                raise ValueError(f"callbacks.doctor.conditions.{name}: ticks must be one of {TICKS}")
            cond.name = name
        self.conditions = [c for name, c in conditions.items() if name not in disable]
        self.run_dir = Path(run_dir) if run_dir else None
        self.warmup_iterations, self.probe_size, self.act = warmup_iterations, probe_size, act
        if slices_every < 1:
            raise ValueError(f"callbacks.doctor.slices_every must be >= 1, got {slices_every}")
        self.slices_every = slices_every
        self.trackers = {c.name: Tracker() for c in self.conditions}
        self.seen = {"evaluations": 0, "rollbacks": 0}  # the history's events already looked at
        self.acted: list[str] = []
        self.started: list[str] = []  # the conditions that started at least once
        self.resumes: list[dict] = []  # resume_diff.json: the resumes of this run directory
        self.loss_bound: float | None = None  # train.loss_bound: the divergence guard's

    def of_margin(self, ticks: str) -> list[Condition]:
        return [c for c in self.conditions if (c.margin_ticks or c.ticks) == ticks]

    def of(self, ticks: str) -> list[Condition]:
        return [c for c in self.conditions if c.ticks == ticks]

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"trackers": {k: t.state_dict() for k, t in self.trackers.items()},
                "seen": dict(self.seen), "acted": self.acted, "started": self.started}  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        for k, t in state.get("trackers", {}).items():
            if k in self.trackers:
                self.trackers[k].load_state_dict(t)
        # ganlab 0.2 kept the events' counts as last_eval / rollbacks: the history has them all
        self.seen = dict(
            state.get("seen") or {"evaluations": -1, "rollbacks": int(state.get("rollbacks", 0))}
        )
        self.acted = list(state.get("acted", []))
        # (a checkpoint from before ganlab 0.3 kept no list: the conditions open then had started)
        self.started = list(state.get("started", [k for k, t in self.trackers.items() if t.active]))

    # -- set-up --------------------------------------------------------------------------------
    def on_train_start(self, trainer, module) -> None:
        if self.seen["evaluations"] < 0:  # a 0.2 checkpoint: its evaluations were all seen
            self.seen["evaluations"] = len(module.history.evaluations)
        if trainer.datamodule is not None and hasattr(trainer.datamodule, "probe_sets"):
            module.attach_probe(Probe(trainer.datamodule.probe_sets(self.probe_size), self.slices_every),
                                every=trainer.log_every_n_steps)  # fmt: skip
        if trainer.is_global_zero and self.run_dir is not None:
            self._drop_events_after(module.progress.iterations)
        config = module.run_config or {}
        guard = ((config.get("callbacks") or {}).get("guard") or {}).get("loss_bound")
        self.loss_bound = guard or (config.get("train") or {}).get("loss_bound")
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

    # -- the ticks -----------------------------------------------------------------------------
    def signals(self, history, iteration: int) -> dict[str, float]:
        """This tick's values (``train/*``, ``doctor/*``: those measured at this tick only), the
        derived ones and every reference the conditions declare."""
        fresh = history.fresh if history.iteration == iteration else set()
        s = {k: history.latest[k] for k in fresh if k.startswith(("train/", "doctor/"))}
        if "train/d_acc_real" in s:
            s["doctor/r_t"] = 2 * s["train/d_acc_real"] - 1  # E[sign D(real)], ADA's r_t
        if "doctor/r_train" in s and "doctor/r_v" in s:
            s["doctor/gap"] = s["doctor/r_train"] - s["doctor/r_v"]
        losses = [abs(s[k]) for k in ("train/loss_d", "train/loss_g") if k in s]
        if losses:
            history.put({"doctor/loss_peak": max(losses)}, iteration)
            s["doctor/loss_peak"] = max(losses)
            if self.loss_bound:
                s["ref/loss_bound"] = float(self.loss_bound)
            recent = history.recent("doctor/loss_peak", WINDOW, before=iteration)
            if recent:
                s["doctor/loss_spike"] = max(losses) / max(statistics.median(recent), 1e-8)
        for cond in self.conditions:
            for key, ref in cond.references.items():
                value = ref.value(history, cond, self.warmup_iterations, iteration)
                if value is not None:
                    s[key] = value
        return s

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        it, history = module.progress.iterations, module.history
        self._tick_rollbacks(trainer, module)
        self._tick_evaluations(trainer, module)
        if not due(trainer.log_every_n_steps, it):
            return
        s = self.signals(history, it)
        if it > self.warmup_iterations:
            for cond in self.of_margin("log"):
                if not self._explained(cond):  # a tick where it could not start is no approach
                    self.trackers[cond.name].near(cond, s, it)
            for cond in self.of("log"):  # in order: one that starts now explains the later ones
                if self._explained(cond):
                    self.trackers[cond.name].streak = 0
                    continue
                self._step(trainer, module, cond, s)
        derived = {k: v for k, v in s.items() if k in DERIVED}
        derived["doctor/conditions"] = float(sum(t.active for t in self.trackers.values()))
        for logger in trainer.loggers:
            logger.log_metrics(derived, step=it)

    def _explained(self, cond: Condition) -> bool:
        """Not active, and kept from starting by a condition that is (``explained_by``)."""
        return not self.trackers[cond.name].active and any(
            self.trackers[e].active for e in cond.explained_by if e in self.trackers
        )

    def _step(self, trainer, module, cond: Condition, s: dict[str, float]) -> None:
        event = self.trackers[cond.name].step(cond, s, self._at(module))
        if event:
            self.announce(trainer, module, cond, event, s)

    def _at(self, module) -> tuple[int, float]:
        return module.progress.iterations, module.progress.images_seen / 1000

    def _tick_rollbacks(self, trainer, module) -> None:
        """The guard's rollbacks (every iteration: kept cheap)."""
        count, conds = len(module.history.rollbacks), self.of("rollback")
        if count == self.seen["rollbacks"] and not any(self.trackers[c.name].active for c in conds):
            return  # nothing new
        s = {"guard/diverged": float(count > self.seen["rollbacks"]), "guard/rollbacks": float(count)}
        self.seen["rollbacks"] = count
        for cond in conds:
            self._step(trainer, module, cond, s)

    def _tick_evaluations(self, trainer, module) -> None:
        history = module.history
        for i in range(self.seen["evaluations"], len(history.evaluations)):
            result = history.evaluations[i]
            best = min(history.evaluations[: i + 1], key=lambda e: e["fid"])  # the first of equals
            s = {
                "val/fid": result["fid"],
                "ref/best_fid": best["fid"],
                "ref/best_it": float(best["iteration"]),
            }
            for logger in trainer.loggers:
                ratio = result["fid"] / max(best["fid"], 1e-12)
                logger.log_metrics({"doctor/fid_vs_best": ratio}, step=result["iteration"])
            if result["iteration"] > self.warmup_iterations:
                for cond in self.of_margin("evaluation"):
                    self.trackers[cond.name].near(cond, s, result["iteration"])
                for cond in self.of("evaluation"):
                    self._step(trainer, module, cond, s)
        self.seen["evaluations"] = len(history.evaluations)

    def on_train_end(self, trainer, module) -> None:
        self._tick_evaluations(trainer, module)  # an evaluation at the end (at_end=true)
        self._write_margins(trainer, module)

    def _write_margins(self, trainer, module) -> None:
        """``doctor_margins.json``: per condition, whether it started and its closest approach."""
        if not trainer.is_global_zero or self.run_dir is None:
            return
        from ganlab.utils.atomic import write_text

        margins = {name: {"started": name in self.started, "closest": t.closest}
                   for name, t in self.trackers.items()}  # fmt: skip
        body = {"iteration": module.progress.iterations, "warmup_iterations": self.warmup_iterations,
                "conditions": margins}  # fmt: skip
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_text(self.run_dir / "doctor_margins.json", json.dumps(body, indent=1) + "\n")

    def on_exception(self, trainer, module, exception: BaseException) -> None:
        if not isinstance(exception, DivergenceError):
            return
        for cond in self.of("rollback"):
            tracker = self.trackers[cond.name]
            if not tracker.active:
                tracker.active, tracker.since = True, self._at(module)
                rollbacks = float(len(module.history.rollbacks))
                self.announce(trainer, module, cond, "start", {"guard/rollbacks": rollbacks})
        self._write_margins(trainer, module)

    # -- saying it -----------------------------------------------------------------------------
    def context(self, module, signals: dict[str, float] | None = None) -> Context:
        """What a fix is chosen from: the run's configuration and checkpoints, from the history."""
        history = module.history
        best = history.best_checkpoint
        if best is not None and not (Path(best).is_file() and self._own(best)):
            best = None
        top = history.best_evaluation()
        if best is None and top is not None:  # the best FID is the checkpoint a resume started from
            best = next(
                (r["ckpt_path"] for r in self.resumes if r.get("iteration") == top["iteration"]), None
            )
        good = next((p for p in history.snapshots(healthy=True) if Path(p).is_file()), None)
        return Context(module.run_config or {}, best_ckpt=best, good_ckpt=good, signals=dict(signals or {}),
                       resumes=self.resumes)  # fmt: skip

    def _own(self, path: str) -> bool:
        """``path`` is in this run's directory. A run resumed into a new directory has the old
        one's best.ckpt in its history, which may since hold weights of later evaluations than the
        history has seen: the checkpoint the resume started from stands for it (``context``)."""
        return self.run_dir is None or Path(path).resolve().is_relative_to(self.run_dir.resolve())

    def announce(self, trainer, module, cond: Condition, event: str, s: dict[str, float]) -> dict[str, Any]:
        it, kimg = self._at(module)
        tracker = self.trackers[cond.name]
        evidence = tracker.evidence if event == "start" else cond.evidence(s) if s else {}
        if event == "start" and not evidence:
            evidence = cond.evidence(s)
        since = tracker.since or (it, kimg)
        ctx = self.context(module, s)
        fix = cond.fix(ctx) if event == "start" else []
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
        if event == "start":
            self.started += [] if cond.name in self.started else [cond.name]
            m = cond.margin(s) if s else None
            if m is not None:  # how far past its thresholds it was when named (<= 0)
                record["margin"] = round(m[0], 5)
        if event == "start" and self.act and cond.name not in self.acted:
            action = cond.act(trainer, module, ctx)
            if action:
                self.acted.append(cond.name)
                record["action"] = action
                record["message"] = message = message + f" Autopilot: {action}."
        module.history.conditions = [k for k, t in self.trackers.items() if t.active]
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
