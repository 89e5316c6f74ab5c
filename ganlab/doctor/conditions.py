"""The doctor's six conditions: what each failure looks like in the signals, its likely cause,
the overrides that address it and what the autopilot does about it. The machinery they share
(``Condition``, ``Tracker``, the references) is ``ganlab.doctor.base``; their thresholds are in
``conf/callbacks/default.yaml``.

Thresholds, rules and fixes were chosen on the tuning set (``experiments/doctor_sets.py``,
``experiments/doctor.md``: the healthy shipped recipes over their full length never reach them,
the runs that induce each failure do) and checked, unchanged, on a validation set of other data,
networks, losses and causes (``experiments/doctor_validation.md``).
"""

from __future__ import annotations

import math

from ganlab.augment import ADA
from ganlab.doctor.base import Ago, Clause, Condition, WarmupMedian
from ganlab.doctor.base import have as _have
from ganlab.doctor.fixes import (
    ADA_ON,
    ada_index,
    changed_since,
    changing_resume,
    fmt,
    get,
    resume_slower,
    typed,
)


class DOverpowers(Condition):
    """D right on (almost) every fake, and sure of it, for a sustained span: G no longer learns
    ("Loss_D -> 0, Loss_G -> 100"). With the minimax loss G's gradient vanishes then; with the
    non-saturating losses it does not (it stays of the order of its early value: the messages of
    the induced runs in ``experiments/doctor.json`` and ``docs/generated/captured/``), so the
    tell is D's probability on the fakes, D(G(z)), falling to a few
    percent while G's loss climbs (healthy DCGAN runs keep it near 0.1 even when D's accuracy is
    0.95-0.99). The autopilot divides D's learning rate by 5."""

    name = "d_overpowers"
    cause = "D learns much faster than G: it rejects every fake with certainty and G stops improving"

    references = {"ref/g_grad_norm": WarmupMedian("doctor/g_grad_norm")}  # G's gradient early on

    def __init__(self, acc_fake: float, d_fake: float, clear_acc_fake: float, clear_d_fake: float,
                 patience: int) -> None:  # fmt: skip
        super().__init__(patience)
        self.acc_fake, self.d_fake = acc_fake, d_fake
        self.clear_acc_fake, self.clear_d_fake = clear_acc_fake, clear_d_fake

    def clauses(self, s):
        if not _have(s, "train/d_acc_fake", "train/d_fake"):
            return None
        return [Clause("train/d_acc_fake", s["train/d_acc_fake"], ">=", self.acc_fake),
                Clause("train/d_fake", s["train/d_fake"], "<=", self.d_fake)]  # fmt: skip

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

    def act(self, trainer, module, ctx):
        before = module.optim.base_lr("d")
        module.optim.rescale(0.2, ("d",), trainer, module)
        return f"D's learning rate {before:.3g} -> {module.optim.base_lr('d'):.3g}"


class DMemorises(Condition):
    """D's score on held-out real images falls away from its score on training images
    (r_v vs r_t, Karras et al. 2020): D memorises the training set, and G follows it."""

    name = "d_memorises"
    cause = "the training set is small for D: it memorises the images instead of learning the distribution"

    def __init__(self, gap: float, clear_gap: float, patience: int) -> None:
        super().__init__(patience)
        self.gap, self.clear_gap = gap, clear_gap

    def clauses(self, s):
        if not _have(s, "doctor/r_train", "doctor/r_v"):
            return None
        return [Clause("doctor/gap", s["doctor/r_train"] - s["doctor/r_v"], ">=", self.gap)]

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

    def act(self, trainer, module, ctx):
        if any(isinstance(aug, ADA) for aug in module.d_augment):
            return None
        module.add_augment("ganlab.augment.ADA", dict(ADA_ON))
        return "ADA switched on (" + ", ".join(f"{k} {v}" for k, v in ADA_ON.items()) + ")"


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

    references = {"ref/diversity": Ago("doctor/diversity")}

    def __init__(
        self, diversity: float, clear_diversity: float, d_fake: float, rising: float, patience: int
    ) -> None:
        super().__init__(patience)
        self.diversity, self.clear_diversity, self.d_fake, self.rising = (
            diversity,
            clear_diversity,
            d_fake,
            rising,
        )

    def clauses(self, s):
        if not _have(s, "doctor/diversity", "train/d_fake"):
            return None
        clauses = [Clause("doctor/diversity", s["doctor/diversity"], "<", self.diversity),
                   Clause("train/d_fake", s["train/d_fake"], ">", self.d_fake)]  # fmt: skip
        if _have(s, "ref/diversity"):  # not growing (no history yet: nothing says it grows)
            growth = s["doctor/diversity"] - s["ref/diversity"]
            clauses.append(Clause("doctor/diversity_growth", growth, "<", self.rising, scale=self.diversity))
        return clauses

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

    references = {"ref/ada_p": Ago("train/ada_p")}

    def __init__(self, p: float, clear_p: float, rise: float, patience: int) -> None:
        super().__init__(patience)
        self.p, self.clear_p, self.rise = p, clear_p, rise

    def clauses(self, s):
        if not _have(s, "train/ada_p", "ref/ada_p"):
            return None
        rise = s["train/ada_p"] - s["ref/ada_p"]
        return [Clause("train/ada_p", s["train/ada_p"], ">=", self.p),
                Clause("train/ada_p_rise", rise, ">=", self.rise, scale=self.p)]  # fmt: skip

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
    ticks = "evaluation"

    def __init__(self, ratio: float, clear_ratio: float, patience: int) -> None:
        super().__init__(patience)
        self.ratio, self.clear_ratio = ratio, clear_ratio

    def clauses(self, s):
        if not _have(s, "val/fid", "ref/best_fid"):
            return None
        return [Clause("doctor/fid_vs_best", s["val/fid"] / max(s["ref/best_fid"], 1e-12), ">", self.ratio)]

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
        best_it = ctx.signals.get("ref/best_it", math.inf)
        changed = changed_since(ctx.resumes, best_it)
        if changed:
            start = ctx.best_ckpt or changing_resume(ctx.resumes, best_it)
            best = [f"ckpt_path={start}"] if start else []
            return best + [f"{c['key']}={typed(c['checkpoint'])}" for c in changed]
        return resume_slower(ctx.best_ckpt, ctx.config)

    def act(self, trainer, module, ctx):
        trainer.should_stop = True
        return f"stopped; the best weights are in {ctx.best_ckpt}" if ctx.best_ckpt else "stopped"


class Divergence(Condition):
    """The divergence guard's finding (``ganlab.callbacks.guard``): a loss or statistic became NaN/inf or
    passed ``train.loss_bound``. Raised by the guard's rollback or stop, not by a threshold here."""

    name = "divergence"
    cause = "the updates blew up: learning rates too high for this model, or a precision overflow"
    ticks = "rollback"
    margin_ticks = "log"  # how near the losses came to the guard's bound, read at every log tick

    def bad(self, s):
        return s.get("guard/diverged", 0.0) > 0 if "guard/diverged" in s else None

    def clauses(self, s):
        """For the margin only (the guard decides): the larger loss against ``train.loss_bound``."""
        if not _have(s, "doctor/loss_peak", "ref/loss_bound"):
            return None
        return [Clause("doctor/loss_peak", s["doctor/loss_peak"], ">", s["ref/loss_bound"])]

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
