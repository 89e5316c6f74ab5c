"""What a Hydra multirun swept: its keys (the command line's sweep overrides, which Hydra's
``multirun.yaml`` keeps, and an Optuna sweeper's ``hydra.sweeper.params``) and each job's values of
them. One reading for the W&B run names (``ganlab.loggers.wandb``) and ``ganlab-report SWEEP_DIR``."""

from __future__ import annotations

from pathlib import Path


def overrides_by_key(overrides: list[str]) -> dict[str, str]:
    """``["loss=bce", "+x=1"]`` -> ``{"loss": "bce", "x": "1"}`` (Hydra's own parser)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return {o.get_key_element(): o.get_value_element_as_str() for o in parsed}


def swept_keys(sweep_dir: str | Path, params: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The keys the multirun in ``sweep_dir`` sweeps: ``params`` (an Optuna sweeper's), then the
    sweep overrides of its ``multirun.yaml``; [] when the folder has none."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    keys = list(params)
    saved = Path(sweep_dir) / "multirun.yaml"
    if saved.is_file():
        hydra = OmegaConf.load(saved).hydra
        keys += list((OmegaConf.select(hydra, "sweeper.params") or {}).keys())
        parsed = OverridesParser.create().parse_overrides(list(hydra.overrides.task))
        keys += [o.get_key_element() for o in parsed if o.is_sweep_override()]
    return list(dict.fromkeys(keys))
