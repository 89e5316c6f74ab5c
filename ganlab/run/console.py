"""What a run prints before its progress line: where the configuration and the run are, then one
line per setting that matters; not the libraries' notices, each printed twice, that are true of
every ganlab run (Lightning's device and tip lines, its srun hint, G_ema "in eval mode", W&B's
banner) and bury the lines a person needs."""

from __future__ import annotations

import logging
import os
import warnings

log = logging.getLogger("ganlab")


class ConsoleFormatter(logging.Formatter):
    """The message alone, with ``warning:`` / ``error:`` before the ones that are."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {text}"


# Warnings that hold for every ganlab run and so say nothing about this one.
NOISE = (
    r"Found \d+ module\(s\) in eval mode",  # G_ema is in eval mode on purpose
    r"The `srun` command is available on your system but is not used",
    r"The number of training batches .* is smaller than the logging interval",  # ganlab logs by itself
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    r".*`weights_only` was not set",
)


def quiet() -> None:
    """Lightning's loggers at WARNING, through the run's own handlers only (Lightning adds a
    handler of its own to its loggers: every line twice under Hydra); known notices filtered;
    W&B without its console banner (``WANDB_SILENT`` unless set: ganlab says where the run is)."""
    import lightning  # noqa: F401  (it adds its handlers when imported: import first, then remove them)

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.WARNING)
    for pattern in NOISE:
        warnings.filterwarnings("ignore", message=pattern)
    os.environ.setdefault("WANDB_SILENT", "true")


def millions(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n:,}"


def summary(cfg, datamodule, model, trainer) -> list[str]:
    """The lines that say what this run is (logged by rank 0)."""
    import torch

    device = trainer.strategy.root_device
    where = (
        torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    )
    strategy = type(trainer.strategy).__name__.replace("Strategy", "") or "single device"
    shape = f"{datamodule.image_size}x{datamodule.image_size}x{datamodule.channels}"
    size = (
        f"{len(datamodule.train_set):,} images" if datamodule.train_set is not None else "size known at setup"
    )
    classes = f", {model.num_classes} classes" if model.num_classes else ""
    params = [sum(p.numel() for p in net.parameters()) for net in (model.G, model.D)]
    net = (
        f"G {type(model.G).__name__} {millions(params[0])}, D {type(model.D).__name__} {millions(params[1])}"
    )
    return [
        f"run: {cfg.paths.output_dir} (configuration: .hydra/config.yaml)",
        f"device: {device.type} ({where}) x {trainer.world_size}, precision {trainer.precision}, "
        f"strategy {strategy}",
        f"data: {cfg.data._target_.rsplit('.', 1)[-1]} at {datamodule.root}, {size} {shape}{classes}, "
        f"batch {datamodule.batch_size} x {model.schedule.d_steps_per_g} per iteration",
        f"model: {net} parameters, loss {type(model.loss).__name__}{', G_ema' if model.ema else ''}",
    ]
