"""Settings checked before anything is built: a bad value ends in one line,
``ganlab: <what> (<the key>): <the fix>``, not in a traceback minutes into the run.

Each rule names a key of the composed configuration, what it must be and an example; a key the
configuration does not hold (``callbacks=none``, another model's options) is not checked.
Each setting is checked in one place: here, or, for values the constructors check themselves with
a message of this form (``optimizer.*.lr``, ``data.batch_size``, the loss options), there; the
constructors of the settings checked here trust them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

from ganlab.utils.errors import UsageError, bad_setting
from ganlab.utils.moved import moved_in, moved_targets

log = logging.getLogger(__name__)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def whole(low: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low


def positive_or_null(v: Any) -> bool:
    return v is None or (_number(v) and v > 0)


def off_or_every(v: Any) -> bool:
    """A cadence: null or 0 turns it off, a positive number sets it."""
    return v is None or (_number(v) and v >= 0)


def betas(v: Any) -> bool:
    return (
        isinstance(v, (list, tuple, ListConfig)) and len(v) == 2 and all(_number(b) and 0 <= b < 1 for b in v)
    )


def devices(v: Any) -> bool:
    if v == "auto" or v == -1 or (whole(1)(v)):
        return True
    if isinstance(v, str):
        return all(p.strip().isdigit() for p in v.split(",") if p.strip()) and any(
            p.strip() for p in v.split(",")
        )
    return isinstance(v, (list, ListConfig)) and len(v) > 0 and all(whole(0)(d) for d in v)


def prior(v: Any) -> bool:
    from ganlab.training.latent import PRIORS  # here, not at import: --help needs no torch

    return v in PRIORS


CADENCES = ("every_n_iterations", "every_kimg", "every_minutes")
WHOLE = "a whole number"


def _whole_rules() -> list[tuple[str, Callable[[Any], bool], str, str]]:
    """Counts: (key, least value, what it is, a good value)."""
    counts = [
        ("model.nz", 1, "the latent size", 100),
        ("model.generator.ngf", 1, "G's base width", 64),
        ("model.discriminator.ndf", 1, "D's base width", 64),
        ("model.n_fixed", 1, "the fixed-noise sample count", 64),
        ("model.d_steps_per_g", 1, "D updates per iteration", 1),
        ("model.d_every", 1, "the D phase's period in iterations", 1),
        ("model.g_every", 1, "the G phase's period in iterations", 1),
        ("data.num_workers", 0, "the number of data workers", 2),
        ("data.image_size", 1, "the image size in pixels", 64),
        ("trainer.num_nodes", 1, "the number of nodes", 1),
        ("trainer.max_steps", -1, "the optimizer-step limit (-1 for none)", -1),
        ("trainer.log_every_n_steps", 1, "the logging period in iterations", 25),
        ("train.check_every", 1, "the divergence check period in iterations", 50),
        ("train.max_rollbacks", 0, "the rollback limit", 3),
        ("callbacks.evaluation.n", 2, "the number of generated images for FID", 10000),
        ("callbacks.evaluation.n_real", 2, "the number of real images for FID", 50000),
        ("callbacks.evaluation.batch_size", 1, "the evaluation batch size", 200),
    ]
    return [
        (key, whole(low), f"{what} must be {WHOLE} >= {low}", f"{key}={good}")
        for key, low, what, good in counts
    ]


# (key, test, what it must be, an example of a good value)
TRAIN_RULES: list[tuple[str, Callable[[Any], bool], str, str]] = [
    ("seed", whole(0), "the seed must be a whole number >= 0", "seed=42"),
    *_whole_rules(),
    (
        "model.latent",
        prior,
        "the prior must be normal or uniform",
        "model.latent=normal",
    ),
    (
        "model.ema_half_life_kimg",
        positive_or_null,
        "the EMA half-life must be a positive number of kimg, or null (off)",
        "model.ema_half_life_kimg=10",
    ),
    (
        "model.ema_rampup",
        lambda v: v is None or (_number(v) and v >= 0),
        "the EMA ramp-up must be a number >= 0, or null",
        "model.ema_rampup=0.05",
    ),
    (
        "optimizer.g.betas",
        betas,
        "G's Adam betas must be two numbers in [0, 1)",
        "optimizer.g.betas=[0.5,0.999]",
    ),
    (
        "optimizer.d.betas",
        betas,
        "D's Adam betas must be two numbers in [0, 1)",
        "optimizer.d.betas=[0.5,0.999]",
    ),
    (
        "trainer.devices",
        devices,
        "the devices must be auto, -1 (all), a count >= 1 or a list of device indices",
        "trainer.devices=1",
    ),
    (
        "trainer.max_epochs",
        lambda v: v is None or whole(-1)(v),
        f"the epoch limit must be {WHOLE} (-1: none)",
        "trainer.max_epochs=200",
    ),
    (
        "train.max_kimg",
        positive_or_null,
        "the run length in kimg must be a positive number, or null",
        "train.max_kimg=500",
    ),
    (
        "train.max_iterations",
        lambda v: v is None or whole(1)(v),
        f"the run length in iterations must be {WHOLE} >= 1, or null",
        "train.max_iterations=10000",
    ),
    (
        "train.on_divergence",
        lambda v: v in ("stop", "rollback"),
        "the divergence policy must be stop or rollback",
        "train.on_divergence=rollback",
    ),
    (
        "train.loss_bound",
        lambda v: _number(v) and v > 0,
        "the divergence bound must be a positive number",
        "train.loss_bound=1e6",
    ),
    (
        "train.rollback_lr_factor",
        lambda v: _number(v) and 0 < v <= 1,
        "the rollback learning-rate factor must be in (0, 1]",
        "train.rollback_lr_factor=0.5",
    ),
    *[
        (
            f"callbacks.{cb}.{c}",
            off_or_every,
            f"the {cb} cadence must be a positive number, or 0/null (off)",
            f"callbacks.{cb}.{c}={good}",
        )
        for cb, every in (("checkpoint", 1000), ("samples", 500), ("evaluation", 5000))
        for c, good in zip(CADENCES, (every, 100, 30))
    ],
]


def check_missing(cfg: DictConfig) -> None:
    """A mandatory value left as ``???`` (``data.root`` of ``data=image_folder``, ``out`` of
    ``ganlab-generate``), or an interpolation that cannot resolve: named with the fix."""
    try:
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as e:
        key = e.full_key
        hint = (
            OmegaConf.select(cfg, key.rsplit(".", 1)[0] + ".how_to_get", default=None) if "." in key else None
        )
        fix = f"set it on the command line, e.g. {key}=..." + (f" ({hint.rstrip('.')})" if hint else "")
        raise UsageError(f"{key} has no value ({key}): {fix}") from None
    except InterpolationResolutionError as e:
        raise UsageError(f"a setting cannot be resolved ({e.full_key}): {str(e).splitlines()[0]}") from None


def apply_rules(cfg: DictConfig, rules: list[tuple[str, Callable[[Any], bool], str, str]]) -> None:
    for key, test, what, example in rules:
        value = OmegaConf.select(cfg, key, default=_ABSENT)
        if value is _ABSENT:
            continue
        if isinstance(value, (DictConfig, ListConfig)):
            value = OmegaConf.to_container(value, resolve=True)
        if not test(value):
            raise bad_setting(what, key, value, example)


_ABSENT = object()


def check_moved(cfg: DictConfig) -> None:
    """A ``_target_`` of an older module layout (a configuration of your own written for it):
    one line naming the new path (``ganlab.utils.moved``), not Hydra's "Error locating target"."""
    moved = moved_targets(OmegaConf.to_container(cfg, resolve=False))
    if moved:
        key, old, new = moved[0]
        raise UsageError(f"{old} moved in ganlab {moved_in(old)} ({key}): write {key}: {new} in your config")


def validate_train(cfg: DictConfig) -> None:
    """Every rule above, then the trainer strategy (``ganlab.training.ddp.resolve_strategy``'s
    refusal names the strategies that work)."""
    check_moved(cfg)
    check_missing(cfg)
    apply_rules(cfg, TRAIN_RULES)
    strategy = OmegaConf.select(cfg, "trainer.strategy", default="auto")
    if isinstance(strategy, str):
        from ganlab.training.ddp import KNOWN_STRATEGIES

        if strategy.lower() not in KNOWN_STRATEGIES:
            raise bad_setting(
                "this strategy cannot train a ganlab GAN (alternating G/D updates need G and D as separate "
                "data-parallel modules)", "trainer.strategy", strategy, "trainer.strategy=auto (GAN DDP on "
                "several devices), trainer.strategy=ddp or trainer.strategy=ddp_spawn",
            )  # fmt: skip


def check_model(model) -> None:
    """The built networks, the loss and the data agree (latent size, classes, pair discriminator,
    ACGAN head); one ``UsageError`` naming the setting otherwise. Run at build time."""
    from ganlab.models.base import Discriminator, Generator

    G, D, loss, k = model.G, model.D, model.loss, model.num_classes
    for net, base, key in ((G, Generator, "model.generator"), (D, Discriminator, "model.discriminator")):
        if not isinstance(net, base):
            raise UsageError(
                f"{type(net).__name__} does not derive from ganlab.models.{base.__name__} ({key}): derive "
                "it, so that the training module knows its latent size and classes"
            )
    if G.nz != model.prior.nz:
        what = f"G takes nz={G.nz}; the latent size must match it"
        raise bad_setting(what, "model.nz", model.prior.nz, f"model.nz={G.nz}")
    if loss.pairwise != D.pairwise:
        need = "a pair discriminator (model=siamese)" if loss.pairwise else "a single-image discriminator"
        raise UsageError(
            f"loss {type(loss).__name__} needs {need}, got {type(D).__name__} (model): pick a matching "
            "model= and loss="
        )
    if G.num_classes != k or D.num_classes != k:
        raise UsageError(
            f"the data has {k} classes but G is built for {G.num_classes} and D for {D.num_classes} "
            "(data.conditional): pass model.num_classes to both networks (model=dcgan and model=resnet "
            f"do), or set data.conditional={'false' if k == 0 else 'true'}"
        )
    if k and loss.pairwise:
        raise UsageError(
            "a pair discriminator has no class-conditional form (data.conditional): "
            "set data.conditional=false"
        )
    if loss.acgan_weight > 0 and not D.aux_classes:
        raise UsageError(
            "the ACGAN term needs D's auxiliary classifier (loss.acgan_weight): set "
            "model.discriminator.aux_classifier=true (and data.conditional=true), or loss.acgan_weight=0"
        )
    problem = loss.check_networks(G, D)
    if problem:
        raise UsageError(problem)
    if D.aux_classes and loss.acgan_weight == 0:
        log.warning("model.discriminator.aux_classifier=true but loss.acgan_weight=0: the classifier idles")
