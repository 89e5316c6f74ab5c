"""The doctor's conditions: what each failure looks like in the signals, when it starts and ends
(hysteresis and a warm-up), its likely cause and the overrides that address it.

Pure Python on host floats, read once per logging interval (a "tick"): ``signals`` maps names to
the interval's means (``train/d_acc_fake``, ``doctor/r_v``, ``train/ada_p``, ...) plus the
doctor's running references. A condition *starts* after its bad test held for ``patience``
consecutive ticks past the warm-up, and *ends* after its clear test (a looser threshold) held as
long: no flapping around one threshold.

Thresholds were set on the CPU recipes (``experiments/doctor.md``): the healthy shipped recipes
never reach them over their full length (two seeds each), the runs that induce each failure do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ganlab.doctor.fixes import (  # noqa: F401 (Context, fmt, get: re-exported)
    ADA_ON,
    Context,
    ada_index,
    changed_since,
    fmt,
    get,
    resume_slower,
    typed,
)


class Condition:
    """One failure. Subclasses set ``name``, ``cause`` and implement ``bad``, ``clear``,
    ``evidence`` and ``fix``; ``bad``/``clear`` return None when the signals cannot tell
    (a signal this run does not have)."""

    name = ""
    cause = ""
    patience = 3  # consecutive ticks to start, and to end
    explained_by: tuple[str, ...] = ()  # conditions that, while active, keep this one from starting

    def bad(self, s: dict[str, float]) -> bool | None:
        raise NotImplementedError

    def clear(self, s: dict[str, float]) -> bool | None:
        raise NotImplementedError

    def evidence(self, s: dict[str, float]) -> dict[str, float]:
        raise NotImplementedError

    def fix(self, ctx: Context) -> list[str]:
        raise NotImplementedError

    def describe(self, evidence: dict[str, float]) -> str:
        return ", ".join(f"{k} {v:.3g}" for k, v in evidence.items())


def _have(s: dict[str, float], *names: str) -> bool:
    return all(n in s and math.isfinite(s[n]) for n in names)


class DOverpowers(Condition):
    """D right on (almost) every fake, and sure of it, for a sustained span: G no longer learns
    ("Loss_D -> 0, Loss_G -> 100"). With the minimax loss G's gradient vanishes then; with the
    non-saturating losses it does not (measured: it grew 5x, ``experiments/doctor.md``), so the
    tell is D's probability on the fakes, D(G(z)), falling to a few percent while G's loss climbs
    (healthy DCGAN runs keep it near 0.1 even when D's accuracy is 0.95-0.99)."""

    name = "d_overpowers"
    cause = "D learns much faster than G: it rejects every fake with certainty and G stops improving"

    def __init__(self, acc_fake: float = 0.97, d_fake: float = 0.03, clear_acc_fake: float = 0.9,
                 clear_d_fake: float = 0.06) -> None:  # fmt: skip
        self.acc_fake, self.d_fake = acc_fake, d_fake
        self.clear_acc_fake, self.clear_d_fake = clear_acc_fake, clear_d_fake

    def bad(self, s):
        if not _have(s, "train/d_acc_fake", "train/d_fake"):
            return None
        return s["train/d_acc_fake"] >= self.acc_fake and s["train/d_fake"] <= self.d_fake

    def clear(self, s):
        if not _have(s, "train/d_acc_fake", "train/d_fake"):
            return None
        return s["train/d_acc_fake"] < self.clear_acc_fake or s["train/d_fake"] > self.clear_d_fake

    def evidence(self, s):
        ev = {"d_acc_fake": s["train/d_acc_fake"]}
        for k in ("train/d_fake", "train/loss_g", "doctor/g_grad_norm", "ref/g_grad_norm"):
            if _have(s, k):
                ev[k.split("/")[1] if k.startswith("train") else k.replace("/", "_")] = s[k]
        return ev

    def describe(self, ev):
        text = f"D right on {ev['d_acc_fake']:.1%} of the fakes"
        if "d_fake" in ev:
            text += f", D(G(z)) {ev['d_fake']:.3f}"
        if "loss_g" in ev:
            text += f", G's loss {ev['loss_g']:.3g}"
        if "doctor_g_grad_norm" in ev and "ref_g_grad_norm" in ev:
            now, early = ev["doctor_g_grad_norm"], ev["ref_g_grad_norm"]
            text += f", G's gradient norm {now:.3g} (early in the run {early:.3g})"
        return text

    def fix(self, ctx):
        lr_d, lr_g = get(ctx.config, "optimizer.d.lr"), get(ctx.config, "optimizer.g.lr")
        fixes = []
        if lr_d:  # D's rate / 5: the remedy one seed report found
            fixes.append(f"optimizer.d.lr={fmt(lr_d / 5)}")
            if lr_g and lr_g < lr_d / 5:  # and G no slower than D then
                fixes.append(f"optimizer.g.lr={fmt(lr_d / 5)}")
        if (get(ctx.config, "model.d_steps_per_g") or 1) > 1:
            fixes.append("model.d_steps_per_g=1")
        if not get(ctx.config, "loss.real_smoothing") and "real_smoothing" in (get(ctx.config, "loss") or {}):
            fixes.append("loss.real_smoothing=0.1")
        return fixes


class DMemorises(Condition):
    """D's score on held-out real images falls away from its score on training images
    (r_v vs r_t, Karras et al. 2020): D memorises the training set, and G follows it."""

    name = "d_memorises"
    cause = "the training set is small for D: it memorises the images instead of learning the distribution"

    def __init__(self, gap: float = 0.5, clear_gap: float = 0.25) -> None:
        self.gap, self.clear_gap = gap, clear_gap

    def bad(self, s):
        if not _have(s, "doctor/r_train", "doctor/r_v"):
            return None
        return s["doctor/r_train"] - s["doctor/r_v"] >= self.gap

    def clear(self, s):
        if not _have(s, "doctor/r_train", "doctor/r_v"):
            return None
        return s["doctor/r_train"] - s["doctor/r_v"] < self.clear_gap

    def evidence(self, s):
        return {"r_train": s["doctor/r_train"], "r_v": s["doctor/r_v"],
                "gap": s["doctor/r_train"] - s["doctor/r_v"]}  # fmt: skip

    def describe(self, ev):
        return (
            f"D scores training images {ev['r_train']:+.2f} but held-out real ones {ev['r_v']:+.2f} "
            f"(E[sign D(x)], gap {ev['gap']:.2f})"
        )

    def fix(self, ctx):
        fixes = []
        i = ada_index(ctx.config)
        if i is None:  # ADA as experiment=limited_data_ada ships it (ADA_ON)
            kwargs = ", ".join(f"{k}: {fmt(v)}" for k, v in ADA_ON.items())
            fixes.append(f"model.d_augment=[{{_target_: ganlab.augment.ADA, {kwargs}}}]")
        else:
            target = float(get(ctx.config, f"model.d_augment.{i}.target", 0.6))
            fixes.append(f"model.d_augment.{i}.target={fmt(max(0.1, target - 0.2))}")
        if get(ctx.config, "data.max_images"):
            fixes.append("data.max_images=null")
        return fixes


class ModeCollapse(Condition):
    """The fakes of a batch look alike (their spread far below the reals') while D still takes
    them for real often enough (D(G(z)) above ``d_fake``), and their spread is not growing (by
    ``rising`` or more over the last ``patience`` ticks: a G still spreading out from its start,
    as a least-squares run does for its first few hundred iterations, is not collapsing): G found
    a few images that pass. Alike fakes that D rejects with certainty are a G that D overpowers
    (``d_overpowers``), not this."""

    name = "mode_collapse"
    cause = "G maps many latents to a few images (mode collapse)"
    explained_by = ("d_overpowers",)  # a G that D overpowers never spreads out: that is the diagnosis

    def __init__(
        self, diversity: float = 0.5, clear_diversity: float = 0.65, d_fake: float = 0.1, rising: float = 0.05
    ) -> None:
        self.diversity, self.clear_diversity, self.d_fake, self.rising = (
            diversity,
            clear_diversity,
            d_fake,
            rising,
        )

    def bad(self, s):
        if not _have(s, "doctor/diversity", "train/d_fake"):
            return None
        growing = _have(s, "ref/diversity") and s["doctor/diversity"] - s["ref/diversity"] >= self.rising
        return s["doctor/diversity"] < self.diversity and s["train/d_fake"] > self.d_fake and not growing

    def clear(self, s):
        return s["doctor/diversity"] >= self.clear_diversity if _have(s, "doctor/diversity") else None

    def evidence(self, s):
        return {"diversity": s["doctor/diversity"], "d_fake": s["train/d_fake"]}

    def describe(self, ev):
        return (
            f"the fakes of a batch are {ev['diversity']:.2f}x as far apart as the reals (pixels, 16x16; "
            "a conditional run's: within each class) "
            f"and D still gives them {ev['d_fake']:.2f}"
        )

    def fix(self, ctx):
        fixes = []
        if ctx.good_ckpt:
            fixes.append(f"ckpt_path={ctx.good_ckpt}")
        if (get(ctx.config, "model.d_every") or 1) > 1:  # G outpaces a D that trains less often
            fixes.append("model.d_every=1")
        lr_g = get(ctx.config, "optimizer.g.lr")
        if lr_g:
            fixes.append(f"optimizer.g.lr={fmt(lr_g / 2)}")
        if not get(ctx.config, "loss.r1_gamma") and "r1_gamma" in (get(ctx.config, "loss") or {}):
            fixes.append("loss.r1_gamma=1")
        return fixes


class AugmentLeak(Condition):
    """ADA's p high and not falling (rising, or pinned at 1) over the last ``patience`` ticks: the
    augmentations start to show in the samples (past p ~ 0.8 for most transformations, Karras et
    al. 2020 fig. 4)."""

    name = "augment_leak"
    cause = (
        "ADA keeps raising p because D stays sure of the reals, and the augmentations leak into G's images"
    )

    def __init__(self, p: float = 0.7, clear_p: float = 0.6, rise: float = 0.0) -> None:
        self.p, self.clear_p, self.rise = p, clear_p, rise

    def bad(self, s):
        if not _have(s, "train/ada_p", "ref/ada_p"):
            return None
        return s["train/ada_p"] >= self.p and s["train/ada_p"] - s["ref/ada_p"] >= self.rise

    def clear(self, s):
        return s["train/ada_p"] < self.clear_p if _have(s, "train/ada_p") else None

    def evidence(self, s):
        return {"ada_p": s["train/ada_p"], "ada_p_before": s.get("ref/ada_p", float("nan"))}

    def describe(self, ev):
        return f"ADA's p {ev['ada_p']:.2f} and not falling (was {ev['ada_p_before']:.2f})"

    def fix(self, ctx):
        i = ada_index(ctx.config)
        if i is None:
            return []
        target = float(get(ctx.config, f"model.d_augment.{i}.target", 0.6))
        return [f"model.d_augment.{i}.target={fmt(min(0.95, target + 0.3))}"]


class QualityRegression(Condition):
    """FID worse than its best by ``ratio`` for ``patience`` evaluations in a row: the late
    collapse after the best FID. Its ticks are evaluations, not logging intervals."""

    name = "quality_regression"
    cause = "sample quality peaked and is getting worse (late collapse, or D overfitting)"
    per_evaluation = True

    def __init__(self, ratio: float = 1.1, clear_ratio: float = 1.03, patience: int = 3) -> None:
        self.ratio, self.clear_ratio, self.patience = ratio, clear_ratio, patience

    def bad(self, s):
        if not _have(s, "val/fid", "ref/best_fid"):
            return None
        return s["val/fid"] > self.ratio * s["ref/best_fid"]

    def clear(self, s):
        if not _have(s, "val/fid", "ref/best_fid"):
            return None
        return s["val/fid"] <= self.clear_ratio * s["ref/best_fid"]

    def evidence(self, s):
        return {
            "fid": s["val/fid"],
            "best_fid": s["ref/best_fid"],
            "best_iteration": s.get("ref/best_it", -1),
        }

    def describe(self, ev):
        best_it = int(ev["best_iteration"])
        return f"FID {ev['fid']:.4g} against its best {ev['best_fid']:.4g} at iteration {best_it}"

    def fix(self, ctx):
        """Back to the best checkpoint; undo what a resume since then changed (quality peaked,
        then a resume changed the recipe: the change is the likely cause), else both rates lower."""
        changed = changed_since(ctx.resumes, ctx.signals.get("ref/best_it", math.inf))
        if changed:
            best = [f"ckpt_path={ctx.best_ckpt}"] if ctx.best_ckpt else []
            return best + [f"{c['key']}={typed(c['checkpoint'])}" for c in changed]
        return resume_slower(ctx.best_ckpt, ctx.config)


class Divergence(Condition):
    """The divergence guard's finding (``ganlab.callbacks.guard``): a loss or statistic became NaN/inf or
    passed ``train.loss_bound``. Raised by the guard's rollback or stop, not by a threshold here."""

    name = "divergence"
    cause = "the updates blew up: learning rates too high for this model, or a precision overflow"
    patience = 1

    def bad(self, s):
        return s.get("guard/diverged", 0.0) > 0 if "guard/diverged" in s else None

    def clear(self, s):
        return s.get("guard/diverged", 0.0) == 0 if "guard/diverged" in s else None

    def evidence(self, s):
        ev = {"rollbacks": s.get("guard/rollbacks", 0.0)}
        if _have(s, "doctor/loss_spike"):
            ev["loss_spike"] = s["doctor/loss_spike"]
        return ev

    def describe(self, ev):
        rollbacks = int(ev["rollbacks"])
        return f"a loss or statistic became NaN/inf or left train.loss_bound (rollbacks so far: {rollbacks})"

    def fix(self, ctx):
        fixes = resume_slower(ctx.good_ckpt, ctx.config)
        if get(ctx.config, "train.on_divergence") != "rollback":
            fixes.append("train.on_divergence=rollback")
        return fixes


CONDITIONS = (DOverpowers, DMemorises, ModeCollapse, Divergence, AugmentLeak, QualityRegression)


@dataclass
class Tracker:
    """One condition's hysteresis: ``active`` since ``since`` (iteration, kimg), the consecutive
    ticks its start (or, when active, its end) test has held. Checkpointed by the doctor."""

    active: bool = False
    streak: int = 0
    since: tuple[int, float] | None = None
    first_bad: tuple[int, float] | None = None  # the tick the current streak began
    evidence: dict[str, float] = field(default_factory=dict)

    def step(self, cond: Condition, s: dict[str, float], at: tuple[int, float]) -> str | None:
        """One tick: returns "start", "end" or None."""
        verdict = cond.clear(s) if self.active else cond.bad(s)
        if verdict is None:  # this tick cannot tell (a signal it lacks, or a NaN): wait
            return None
        if not verdict:
            self.streak, self.first_bad = 0, None
            return None
        if self.streak == 0:
            self.first_bad = at
        self.streak += 1
        if not self.active:
            self.evidence = cond.evidence(s)
        if self.streak < cond.patience:
            return None
        self.streak = 0
        if self.active:
            self.active, self.since = False, None
            return "end"
        self.active, self.since = True, self.first_bad
        return "start"

    def state_dict(self) -> dict:
        return {"active": self.active, "streak": self.streak, "since": self.since,
                "first_bad": self.first_bad, "evidence": self.evidence}  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        self.active, self.streak = bool(state["active"]), int(state["streak"])
        self.since = tuple(state["since"]) if state.get("since") else None
        self.first_bad = tuple(state["first_bad"]) if state.get("first_bad") else None
        self.evidence = dict(state.get("evidence") or {})
