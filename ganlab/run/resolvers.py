"""OmegaConf resolvers used by ``conf/``; importing this module registers them."""

from __future__ import annotations

from omegaconf import OmegaConf

# torch is imported when a resolver runs, not here: composing a config (--help, tab completion)
# must not pay for it.


def auto_precision() -> str:
    """``bf16-mixed`` on a GPU that supports bf16 (the fast path), else full ``32-true`` (on
    CPU, bf16 autocast is slower than fp32 and 16-mixed needs a GPU)."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"


def cuda_available() -> bool:
    """For switches that help on a GPU only (channels_last, fused Adam)."""
    import torch

    return torch.cuda.is_available()


def metric_suffix(n: int) -> str:
    """10000 -> '10k', as in the logged metric names (``val/fid_10k``)."""
    from ganlab.metrics.gan_metrics import metric_suffix as suffix

    return suffix(int(n))


INTERNAL_GROUPS = (
    "bench",
    "hydra",
    "paths",
    "shared",
)  # composed by ganlab itself, not chosen on a command line


def config_groups() -> str:
    """``group: option, option`` per line for ``ganlab-train --help``: the shipped groups a user
    picks from (Hydra's own listing also shows the internal ones)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "conf"  # ganlab/conf
    groups = sorted(
        d for d in root.iterdir() if d.is_dir() and d.name not in INTERNAL_GROUPS and d.name[0] != "_"
    )
    return "\n".join(f"{d.name}: {', '.join(sorted(p.stem for p in d.glob('*.yaml')))}" for d in groups)


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("auto_precision"):
        OmegaConf.register_new_resolver("auto_precision", auto_precision)
    if not OmegaConf.has_resolver("cuda_available"):
        OmegaConf.register_new_resolver("cuda_available", cuda_available)
    if not OmegaConf.has_resolver("metric_suffix"):
        OmegaConf.register_new_resolver("metric_suffix", metric_suffix)
    if not OmegaConf.has_resolver("ganlab_groups"):
        OmegaConf.register_new_resolver("ganlab_groups", config_groups)


register_resolvers()
