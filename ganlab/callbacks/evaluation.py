"""FID/KID/IS and precision/recall while training (``callbacks.evaluation``)."""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger

from ganlab.metrics import GANMetrics, load_feature_net, metric_suffix
from ganlab.training.ddp import broadcast_buffers
from ganlab.utils.every_n import due_at

log = logging.getLogger(__name__)


class FIDEvaluation(L.Callback):
    """FID / KID / IS on ``n`` generated images every ``every_n_iterations`` (and at the end of
    training with ``at_end``), logged as ``val/fid_10k``, ``val/kid_10k``, ``val/is_10k``.

    Under DDP every rank generates its share and extracts features; the features are gathered
    to rank 0, which alone holds the real statistics and computes; the result is broadcast so
    that every rank logs it and takes the same ``best.ckpt`` decision (no rank waits alone).
    Latents come from a fixed seed, so successive evaluations compare the same z.
    ``best.ckpt`` keeps the lowest-FID weights: GAN quality often peaks and then collapses. Each
    result, and the best, are kept in the run's history (``ganlab.training.history``; the doctor
    reads them there).
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
        self.every_kimg = every_kimg
        self._last = -1

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
        best = module.history.record_evaluation(result)  # every rank: the result was broadcast
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
        if best and self.best_dirpath is not None:  # every rank calls: saving is collective under DDP
            module.history.best_checkpoint = str(self.best_dirpath / "best.ckpt")
            trainer.save_checkpoint(self.best_dirpath / "best.ckpt")
        if trainer.is_global_zero:  # the run's summary: a sweep's table shows both per run
            best_fid = module.history.best_evaluation()["fid"]
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    summary = {f"val/fid_{k}_final": result["fid"], f"val/fid_{k}_best": best_fid}
                    logger.experiment.summary.update(summary)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if due_at(module.progress, self.every_n_iterations, self.every_kimg):
            self.evaluate(trainer, module)

    def on_train_end(self, trainer, module) -> None:
        if self.at_end:
            self.evaluate(trainer, module)
