"""What the doctor's fixes are made of: the run's configuration they are chosen from
(``Context``), overrides written as a user types them, and the settings GAN practice and this
project's measurements point to (``ADA_ON``, ``PRACTICE_LR``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


def fmt(v: float) -> str:
    """A learning rate or a threshold as a user types it: 4e-05 -> 4e-5."""
    if 0 < abs(v) < 1e-2:
        mantissa, exponent = f"{v:.2e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return f"{v:.3g}"


def get(config: dict, dotted: str, default: Any = None) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return default
    return node


# ADA as d_memorises' fix and the autopilot switch it on: experiment=limited_data_ada's setting (at
# the paper's 0.6 this DCGAN's D drives p up regardless and the augmentations leak). 128 images,
# experiments/doctor.md: judge cFID 43.6 -> 29.4 with it (at target 0.69: 45.5, doctor.md of f728159).
ADA_ON = {"target": 0.9, "speed_kimg": 20}


def ada_index(config: dict) -> int | None:
    """The position of ADA in ``model.d_augment``, or None."""
    for i, aug in enumerate(get(config, "model.d_augment") or []):
        if isinstance(aug, dict) and str(aug.get("_target_", "")).endswith("ADA"):
            return i
    return None


PRACTICE_LR = 2e-4  # Adam's rate for GANs since DCGAN (Radford et al. 2016); BigGAN's D: 2e-4
HIGH_LR = 1e-3  # above this, GAN practice is rare: back to PRACTICE_LR rather than a fraction


def resume_slower(ckpt: str | None, config: dict) -> list[str]:
    """Resume from ``ckpt`` (when there is one) with both learning rates halved, or set to 2e-4
    where they are above GAN practice (> 1e-3): a tenth of a rate of 1 still diverges or
    collapses (``experiments/doctor.md``: lr 0.1 after 1 ended at cFID 274)."""
    fixes = [f"ckpt_path={ckpt}"] if ckpt else []
    for net in ("g", "d"):
        lr = get(config, f"optimizer.{net}.lr")
        if lr:
            fixes.append(f"optimizer.{net}.lr={fmt(PRACTICE_LR if lr > HIGH_LR else lr / 2)}")
    return fixes


@dataclass
class Context:
    """What a fix is chosen from: the run's resolved configuration (``checkpoint["ganlab"]["config"]``)
    and its files."""

    config: dict
    best_ckpt: str | None = None  # the evaluation callback's best.ckpt, when written
    good_ckpt: str | None = None  # the newest checkpoint written before the condition began
    signals: dict[str, float] = field(default_factory=dict)  # the tick's signals and references
    # the run's resumes (``resume_diff.json``): {"iteration", "ckpt_path", "changes"} each
    resumes: list[dict[str, Any]] = field(default_factory=list)


RECIPE = ("optimizer.", "loss.", "model.")  # the settings a resume may change that shape training


def typed(value: Any) -> str:
    """A configuration value as an override's right-hand side."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, float):
        return fmt(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value).replace('"', "")
    return str(value)


def changing_resume(resumes: list[dict[str, Any]], iteration: float) -> str | None:
    """The checkpoint of the first resume at or after ``iteration`` that changed a setting: the
    weights just before the change, where undoing it starts (a run resumed into a new directory
    does not own the best checkpoint of the run it resumed)."""
    return next((r.get("ckpt_path") for r in resumes if r.get("iteration") is not None
                 and r["iteration"] >= iteration and changed_since([r], iteration)), None)  # fmt: skip


def changed_since(resumes: list[dict[str, Any]], iteration: float) -> list[dict[str, Any]]:
    """The training settings a resume at or after ``iteration`` changed (``kind`` applied): what
    a regression that began there points to. Paths and ``_target_`` renames are not settings."""
    return [
        c
        for r in resumes
        if r.get("iteration") is not None and r["iteration"] >= iteration
        for c in r.get("changes", [])
        if c.get("kind") == "applied" and c["key"].startswith(RECIPE) and not c["key"].endswith("_target_")
    ]
