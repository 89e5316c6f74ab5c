"""Callbacks: fixed-noise sample grids, and checkpoints on a GAN-iteration cadence."""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_only

from ganlab.cadence import due, due_at
from ganlab.images import save_grid
from ganlab.metrics import GANMetrics, load_feature_net, metric_suffix
from ganlab.strategy import broadcast_buffers

log = logging.getLogger(__name__)


class SampleGrid(L.Callback):
    """G(fixed_z) as a PNG grid every ``every_n_iterations`` (or ``every_kimg``) and, with
    ``every_epoch``, at the end of each epoch, written to ``<dirpath>/it{iteration:07d}.png`` (and
    ``latest.png``) and sent to W&B.

    The fixed noise lives in the module (a checkpointed buffer), so a resumed run keeps
    drawing the same latents and the grids form one comparable sequence.
    """

    def __init__(
        self,
        dirpath: str,
        every_n_iterations: int = 500,
        every_kimg: float | None = None,
        every_epoch: bool = True,
    ) -> None:
        self.dirpath, self.every_n_iterations, self.every_kimg = Path(dirpath), every_n_iterations, every_kimg
        self.every_epoch = every_epoch
        self._last = -1

    @rank_zero_only
    def write(self, trainer: L.Trainer, module) -> Path | None:
        it = module.progress.iterations
        if it == self._last:
            return None
        self._last = it
        images = module.generate(module.fixed_z, module.fixed_y)  # (N, C, H, W) in [-1, 1]
        self.dirpath.mkdir(parents=True, exist_ok=True)
        path = self.dirpath / f"it{it:07d}.png"
        grid = save_grid(images, module.grid_columns, path)  # (3, H', W') uint8
        shutil.copyfile(path, self.dirpath / "latest.png")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                # uint8 (H, W, 3): wandb.Image reads float arrays as 0-255, so a [0, 1] grid is black.
                logger.log_image(
                    key="samples/fixed_noise", images=[grid.permute(1, 2, 0).numpy()], step=it,
                    caption=[f"iteration {it}"],
                )  # fmt: skip
            elif isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("samples/fixed_noise", grid, global_step=it)
        return path

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if due_at(module.progress, self.every_n_iterations, self.every_kimg):
            self.write(trainer, module)

    def on_train_epoch_end(self, trainer, module) -> None:
        if self.every_epoch:
            self.write(trainer, module)


class RunReport(L.Callback):
    """``ganlab.report``'s plots and checkpoint timeline at the end of every run (rank 0), in
    ``dirpath`` (default ``<run_dir>/report``), and sent to W&B. A failure here is logged with
    the command to retry, not raised: the run it reports on has finished."""

    def __init__(self, run_dir: str, dirpath: str | None = None, columns: int = 8, rows: int = 12) -> None:
        self.run_dir, self.dirpath, self.columns, self.rows = run_dir, dirpath, columns, rows

    def on_fit_end(self, trainer, module) -> None:
        if not trainer.is_global_zero or trainer.fast_dev_run:
            return
        from ganlab.report import write_report

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


class GANCheckpoint(Checkpoint):
    """Checkpoints on a GAN cadence: every ``every_n_iterations`` GAN iterations, every
    ``every_kimg`` thousand real images, every ``every_minutes`` of wall time (long iterations,
    preemptible machines; rank 0's clock decides, checked every 10 iterations under DDP with one
    small broadcast), and at the end of each epoch (``every_epoch``). Each save writes
    ``<dirpath>/<filename>.ckpt`` (``{iteration}`` in the name; every snapshot kept: GAN quality
    often peaks, then collapses) and ``last.ckpt``, through ``trainer.save_checkpoint`` (atomic:
    ``ganlab.checkpoints.AtomicCheckpointIO``). Repeated saves are recognised by iteration
    (``global_step`` counts optimizer steps and stands still on iterations whose updates are all
    skipped)."""

    def __init__(
        self,
        dirpath: str,
        filename: str = "it{iteration:07d}",
        every_n_iterations: int = 0,
        every_kimg: float | None = None,
        every_minutes: float | None = None,
        every_epoch: bool = True,
        save_last: bool = True,
    ) -> None:
        self.dirpath, self.filename, self.save_last = Path(dirpath), filename, save_last
        self.every_n_iterations, self.every_kimg, self.every_minutes = (
            every_n_iterations,
            every_kimg,
            every_minutes,
        )
        self.every_epoch = every_epoch
        self.last_model_path = ""  # the newest file written by this run
        self._last_iteration_saved = 0  # nothing to save before the first iteration
        self._last_time = time.monotonic()

    def on_train_start(self, trainer, pl_module) -> None:
        self._last_time = time.monotonic()

    def _time_due(self, trainer, iteration: int) -> bool:
        if not self.every_minutes:
            return False
        if trainer.world_size > 1 and not due(10, iteration):
            return False
        late = time.monotonic() - self._last_time >= self.every_minutes * 60
        return bool(trainer.strategy.broadcast(late)) if trainer.world_size > 1 else late

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        progress = pl_module.progress
        if due_at(progress, self.every_n_iterations, self.every_kimg) or self._time_due(
            trainer, progress.iterations
        ):
            self.save_now(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.every_epoch:
            self.save_now(trainer)

    def save_now(self, trainer) -> None:
        """The iteration's checkpoint and ``last.ckpt``, now (also for ``ganlab.preemption``); a
        later save at the same iteration (the epoch end) is then skipped. Every rank calls it:
        saving is collective (the RNG states of all ranks are gathered)."""
        it = trainer.lightning_module.progress.iterations
        if trainer.fast_dev_run or trainer.state.fn != TrainerFn.FITTING or it == self._last_iteration_saved:
            return
        path = self.dirpath / f"{self.filename.format(iteration=it)}.ckpt"
        trainer.save_checkpoint(path)
        if self.save_last:
            trainer.save_checkpoint(self.dirpath / "last.ckpt")
        self.last_model_path = str(self.dirpath / "last.ckpt" if self.save_last else path)
        self._last_iteration_saved, self._last_time = it, time.monotonic()


class FIDEvaluation(L.Callback):
    """FID / KID / IS on ``n`` generated images every ``every_n_iterations`` (and at the end of
    training with ``at_end``), logged as ``val/fid_10k``, ``val/kid_10k``, ``val/is_10k``.

    Under DDP every rank generates its share and extracts features; the features are gathered
    to rank 0, which alone holds the real statistics and computes; the result is broadcast so
    that every rank logs it and takes the same ``best.ckpt`` decision (no rank waits alone).
    Latents come from a fixed seed, so successive evaluations compare the same z.
    ``best.ckpt`` keeps the lowest-FID weights: GAN quality often peaks and then collapses.
    Real statistics are cached in ``cache_dir`` per dataset, resolution and feature network.
    """

    def __init__(
        self,
        every_n_iterations: int = 5000,
        n: int = 10_000,
        n_real: int = 50_000,
        batch_size: int = 200,
        feature: str = "auto",
        weights: str | None = None,
        cache_dir: str | None = None,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        inception_score: bool = True,
        seed: int = 0,
        at_end: bool = False,
        best_dirpath: str | None = None,
        results_dir: str | None = None,
        every_kimg: float | None = None,
        precision_recall: bool = True,
    ) -> None:
        self.precision_recall = precision_recall
        self.every_n_iterations, self.n, self.n_real, self.batch_size = (
            every_n_iterations,
            n,
            n_real,
            batch_size,
        )
        self.feature, self.weights, self.cache_dir = feature, weights, cache_dir
        self.kid = (kid_subsets, kid_subset_size)
        self.inception_score, self.seed, self.at_end = inception_score, seed, at_end
        self.best_dirpath = Path(best_dirpath) if best_dirpath else None
        self.results_dir = Path(results_dir) if results_dir else None
        self.metrics: GANMetrics | None = None
        self.best_fid = math.inf
        self.every_kimg = every_kimg
        self._last = -1
        self.last_result: dict | None = None  # the latest evaluation (every rank), for the doctor

    def state_dict(self) -> dict:
        return {"best_fid": self.best_fid}

    def load_state_dict(self, state: dict) -> None:
        self.best_fid = state.get("best_fid", math.inf)

    def _prepare(self, trainer, module) -> GANMetrics:
        if self.metrics is None:
            features = load_feature_net(
                self.feature, self.weights, device=module.device, key="callbacks.evaluation.feature"
            )
            self.metrics = GANMetrics(
                features,
                *self.kid,
                inception_score=self.inception_score,
                settings_prefix="callbacks.evaluation.",
                precision_recall=self.precision_recall,
            )
            if trainer.is_global_zero:
                self.metrics.load_or_compute_real_for(
                    trainer.datamodule, self.n_real, self.batch_size, self.cache_dir
                )
            trainer.strategy.barrier("fid_real_stats")
        return self.metrics

    def evaluate(self, trainer, module) -> dict | None:
        """Evaluate now. The training RNG streams are left as they were (the real-statistics pass,
        its loader and KID's subsets draw from the global generators), so training continues on
        the same random numbers whether or not the real statistics came from the cache."""
        devices = [module.device] if module.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            return self._evaluate(trainer, module)

    def _evaluate(self, trainer, module) -> dict | None:
        it = module.progress.iterations
        if it == self._last:
            return None
        self._last = it
        metrics = self._prepare(trainer, module)
        # BatchNorm statistics are per rank under GAN DDP: all ranks generate with rank 0's.
        broadcast_buffers(module.G, module.G_ema)
        t0 = time.perf_counter()
        n_local = math.ceil(self.n / trainer.world_size)
        # Conditional: every rank cycles through the classes, so the sample is class-balanced.
        labels = torch.arange(n_local) % module.num_classes if module.num_classes else None
        feats, logits = metrics.generated_features(
            module.generate,
            module.prior.sample,
            n_local,
            self.batch_size,
            self.seed + trainer.global_rank,
            labels,
        )
        feats = trainer.strategy.all_gather(feats).reshape(-1, metrics.features.num_features)[: self.n]
        all_logits = None
        if logits is not None:
            all_logits = trainer.strategy.all_gather(logits).reshape(-1, logits.shape[1])[: self.n]
        result = None
        if trainer.is_global_zero:
            metrics.reset_fake()
            metrics.add_fake_features(feats, all_logits)
            result = metrics.compute()
            result.update(iteration=it, seconds=time.perf_counter() - t0)
            result["images_per_s"] = self.n / result["seconds"]
        result = trainer.strategy.broadcast(result, src=0)
        self._record(trainer, module, result)
        return result

    def _record(self, trainer, module, result: dict) -> None:
        self.last_result = result
        k = metric_suffix(self.n)
        values = {f"val/fid_{k}": result["fid"], f"val/kid_{k}": result["kid_mean"]}
        if "is_mean" in result:
            values[f"val/is_{k}"] = result["is_mean"]
        for name in ("precision", "recall"):
            if name in result:
                values[f"val/{name}_{k}"] = result[name]
        for name, v in values.items():
            trainer.callback_metrics[name] = torch.tensor(v)
        for logger in trainer.loggers:  # directly: the evaluation cadence is not log_every_n_steps
            logger.log_metrics(values, step=module.progress.iterations)
        log.info("iteration %d: %s", result["iteration"], {n: round(v, 4) for n, v in values.items()})
        if trainer.is_global_zero and self.results_dir is not None:
            self.results_dir.mkdir(parents=True, exist_ok=True)
            (self.results_dir / f"it{result['iteration']:07d}.json").write_text(json.dumps(result, indent=2))
        if result["fid"] < self.best_fid:
            self.best_fid = result["fid"]
            if self.best_dirpath is not None:  # every rank calls: saving is collective under DDP
                trainer.save_checkpoint(self.best_dirpath / "best.ckpt")
        if trainer.is_global_zero:  # the run's summary: a sweep's table shows both per run
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    summary = {f"val/fid_{k}_final": result["fid"], f"val/fid_{k}_best": self.best_fid}
                    logger.experiment.summary.update(summary)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if due_at(module.progress, self.every_n_iterations, self.every_kimg):
            self.evaluate(trainer, module)

    def on_train_end(self, trainer, module) -> None:
        if self.at_end:
            self.evaluate(trainer, module)
