"""The run report at the end of every run (``callbacks.report``; the plots: ``ganlab.run.plots``)."""

from __future__ import annotations

import logging

import lightning as L
from lightning.pytorch.loggers import WandbLogger

log = logging.getLogger(__name__)


class RunReport(L.Callback):
    """``ganlab.report``'s plots and checkpoint timeline at the end of every run (rank 0), in
    ``dirpath`` (default ``<run_dir>/report``), and sent to W&B. A failure here is logged with
    the command to retry, not raised: the run it reports on has finished."""

    def __init__(self, run_dir: str, dirpath: str | None = None, columns: int = 8, rows: int = 12) -> None:
        self.run_dir, self.dirpath, self.columns, self.rows = run_dir, dirpath, columns, rows

    def on_fit_end(self, trainer, module) -> None:
        if not trainer.is_global_zero or trainer.fast_dev_run:
            return
        from ganlab.run.plots import write_report

        for logger in trainer.loggers:
            logger.save()  # rows still buffered (the final evaluation) reach metrics.csv first
        try:
            written = write_report(self.run_dir, self.dirpath, self.columns, self.rows)
        except Exception as e:  # noqa: BLE001
            log.warning(
                "run report failed (%s: %s); retry with: ganlab-report %s", type(e).__name__, e, self.run_dir
            )
            return
        log.info("run report: %s", ", ".join(str(p) for p in written))
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                # The plots, one key each (W&B warns when one key's images differ in size).
                for path in (p for p in written if p.suffix == ".png"):
                    logger.log_image(key=f"report/{path.stem}", images=[str(path)])
