"""FID, KID and IS over one feature pass, with real-image statistics cached on disk.

Features are computed once per image batch by ``FIDFeatures`` and handed to torchmetrics'
``FrechetInceptionDistance`` and ``KernelInceptionDistance`` through an identity "feature
extractor", and to ``inception_score`` (torch-fidelity's convention), so the three metrics share
one network call. The metrics never
sync across processes themselves (``sync_on_compute=False``): under DDP the caller gathers
fake features to rank 0 (see ``ganlab.callbacks.evaluation.FIDEvaluation``), so real statistics, held
once on rank 0, are never summed over ranks.

Precision and recall (Kynkaanniemi et al. 2019) use the same features: the real ones kept for
KID (up to 10k, cached with the statistics) against the generated ones.

References: Heusel et al. 2017 (FID), Binkowski et al. 2018 (KID), Salimans et al. 2016 (IS),
Kynkaanniemi et al. 2019, "Improved Precision and Recall Metric for Assessing Generative Models".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from ganlab.metrics.features import FIDFeatures, to_uint8
from ganlab.utils.atomic import atomic_path
from ganlab.utils.durations import duration
from ganlab.utils.errors import UsageError
from ganlab.utils.hashing import cache_key

log = logging.getLogger(__name__)


def metric_suffix(n: int) -> str:
    """10000 -> '10k', 2048 -> '2048': the sample count in metric names (``val/fid_10k``)."""
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


class _Given(nn.Module):
    """Identity "feature extractor": torchmetrics receives features computed elsewhere."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: Tensor) -> Tensor:
        return x


class GANMetrics:
    """Accumulate real and fake features; ``compute()`` gives FID, KID (mean, std) and IS.

    ``kid_subsets`` x ``kid_subset_size`` as in Binkowski et al. (100 x 1000); the subset size
    shrinks to the smaller sample count when fewer images are given. ``inception_score``
    needs a network with a classifier head; without one IS is skipped and the result says why.
    """

    def __init__(
        self,
        features: FIDFeatures,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        inception_score: bool = True,
        is_splits: int = 10,
        settings_prefix: str = "",
        precision_recall: bool = True,
        pr_k: int = 3,
    ) -> None:
        """``settings_prefix``: where this tool's metric settings live (``callbacks.evaluation.``
        in training, nothing for ``ganlab.evaluate``), for messages that name the key to set."""
        self.features = features
        self.settings_prefix = settings_prefix
        self.kid_subsets, self.kid_subset_size = kid_subsets, kid_subset_size
        self.is_splits = is_splits
        self.want_is = inception_score
        self.want_pr, self.pr_k = precision_recall, pr_k
        self.reset_fake()
        self._real_sum = self._real_cov_sum = None
        self._real_n = 0
        self._real_kid: list[Tensor] = []

    @property
    def device(self) -> torch.device:
        return next(self.features.parameters(), torch.empty(0)).device

    # -- features -----------------------------------------------------------------------------
    def extract(self, images_uint8: Tensor) -> tuple[Tensor, Tensor | None]:
        return self.features(images_uint8.to(self.device))

    def reset_fake(self) -> None:
        self._fake: list[Tensor] = []
        self._fake_logits: list[Tensor] = []

    def add_fake_features(self, feats: Tensor, logits: Tensor | None = None) -> None:
        self._fake.append(feats.detach().float().cpu())
        if logits is not None:
            self._fake_logits.append(logits.detach().float().cpu())

    def add_fake(self, images_uint8: Tensor) -> None:
        self.add_fake_features(*self.extract(images_uint8))

    def generated_features(
        self,
        generate: Callable[[Tensor, Tensor | None], Tensor],
        sample_z: Callable[..., Tensor],
        n: int,
        batch_size: int,
        seed: int,
        labels: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """The one "generate -> uint8 -> features" path (training-time evaluation and
        ``ganlab.evaluate``): ``n`` images ``generate(z, y)`` in [-1, 1] from latents
        ``sample_z(m, generator=g)`` of a CPU generator seeded ``seed`` (the same z at every
        evaluation), ``labels`` (n,) their classes or None; returns (features (n, D), IS logits
        (n, K) or None), not yet added to the fake set."""
        g = torch.Generator().manual_seed(seed)
        feats, logits = [], []
        progress = FeatureProgress("generated images", n)
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            y = labels[start : start + m] if labels is not None else None
            f, lg = self.extract(to_uint8(generate(sample_z(m, generator=g), y)))
            feats.append(f)
            logits.append(lg)
            progress.update(start + m)
        return torch.cat(feats), (torch.cat(logits) if logits[0] is not None else None)

    @property
    def n_fake(self) -> int:
        return sum(f.shape[0] for f in self._fake)

    # -- real statistics ----------------------------------------------------------------------
    def set_real(self, stats: dict[str, Any]) -> None:
        self._real_sum, self._real_cov_sum = stats["sum"], stats["cov_sum"]
        self._real_n, self._real_kid = int(stats["n"]), [stats["kid_features"]]

    def real_stats_from(self, batches: Iterable[Tensor], max_n: int, kid_max: int = 10_000) -> dict[str, Any]:
        """Sums for FID (float64, as torchmetrics keeps them) and up to ``kid_max`` features for KID
        from uint8 image batches; progress logged every few seconds."""
        d = self.features.num_features
        s, cov, n, kid = torch.zeros(d, dtype=torch.float64), torch.zeros(d, d, dtype=torch.float64), 0, []
        progress = FeatureProgress("real statistics", max_n)
        for images in batches:
            images = images[: max_n - n]
            f, _ = self.extract(images)
            f64 = f.double().cpu()
            s += f64.sum(0)
            cov += f64.T @ f64
            if sum(k.shape[0] for k in kid) < kid_max:
                kid.append(f.float().cpu())
            n += images.shape[0]
            progress.update(n)
            if n >= max_n:
                break
        if n < 2:
            raise UsageError(
                f"FID statistics need at least 2 real images, the real set gave {n} ({self.settings_prefix}"
                f"n_real / the real images): point it at a set of at least 2 (thousands for a meaningful FID)"
            )
        return {"sum": s, "cov_sum": cov, "n": n, "kid_features": torch.cat(kid)[:kid_max]}

    def load_or_compute_real(
        self, cache_file: Path | None, batches: Callable[[], Iterable[Tensor]], max_n: int, meta: dict
    ) -> dict[str, Any]:
        """Real statistics from ``cache_file`` when it was written by the same feature network for
        the same data, else computed from ``batches()`` and written there (atomically)."""
        if cache_file is not None and cache_file.is_file():
            stats = torch.load(cache_file, map_location="cpu", weights_only=True)
            if stats.get("feature_net") == self.features.identity and stats.get("meta") == meta:
                log.info("real statistics from cache %s (%d images)", cache_file, stats["n"])
                self.set_real(stats)
                return stats
            log.warning("cache %s was written for other data or another network: recomputing", cache_file)
        log.info("computing the real statistics once (up to %d images, %s); later evaluations read %s",
                 max_n, self.features.identity, cache_file or "nothing: no cache_dir")  # fmt: skip
        t0 = time.perf_counter()
        stats = self.real_stats_from(batches(), max_n)
        stats.update(feature_net=self.features.identity, meta=meta)
        log.info("real statistics: %d images in %.1fs", stats["n"], time.perf_counter() - t0)
        if cache_file is not None:
            with atomic_path(cache_file) as tmp:
                torch.save(stats, tmp)
        self.set_real(stats)
        return stats

    def load_or_compute_real_for(
        self, datamodule, n_real: int, batch_size: int, cache_dir: str | Path | None, label: int | None = None
    ) -> dict[str, Any]:
        """Real statistics of ``datamodule`` (its ``fingerprint()`` and ``real_batches()``), cached
        under ``cache_dir``; of class ``label``'s images only when given (intra-class FID). The
        one place that builds the cache key, so training-time evaluation and ``ganlab.evaluate``
        share one file per dataset, class, resolution, ``n_real`` and network."""
        meta = {**self._describe(datamodule, label), "n_real": n_real}
        cache = real_cache_file(cache_dir, meta, self.features.identity) if cache_dir else None
        return self.load_or_compute_real(
            cache, lambda: datamodule.real_batches(batch_size, label=label), n_real, meta
        )

    @staticmethod
    def _describe(datamodule, label: int | None) -> dict:
        return {**datamodule.fingerprint(), **({"label": label} if label is not None else {})}

    def cached_real_counts(
        self, datamodule, cache_dir: str | Path | None, label: int | None = None
    ) -> list[int]:
        """How many real images the statistics cached for this data (and class) and network hold."""
        if not cache_dir or not Path(cache_dir).is_dir():
            return []
        return cached_counts(cache_dir, self._describe(datamodule, label), self.features.identity)

    # -- the numbers --------------------------------------------------------------------------
    def compute(self) -> dict[str, Any]:
        if self._real_n < 2:
            raise RuntimeError("real statistics are not set: call load_or_compute_real() or set_real() first")
        fake = torch.cat(self._fake)
        if fake.shape[0] < 2:
            raise UsageError(
                f"FID needs at least 2 generated images, got {fake.shape[0]} ({self.settings_prefix}n / "
                "the fake images): evaluate at least 2 (thousands for a meaningful FID)"
            )
        d = self.features.num_features
        fid = FrechetInceptionDistance(feature=_Given(d), reset_real_features=False, sync_on_compute=False)
        # The cached real statistics go in through Metric's public state API (``persistent`` puts
        # the states in the state dict); the fake side through ``update``.
        fid.persistent(True)
        fid.load_state_dict({**fid.state_dict(), "real_features_sum": self._real_sum,
                             "real_features_cov_sum": self._real_cov_sum,
                             "real_features_num_samples": torch.tensor(self._real_n)})  # fmt: skip
        fid.update(fake, real=False)
        real_kid = torch.cat(self._real_kid)
        subset = min(self.kid_subset_size, real_kid.shape[0], fake.shape[0])
        kid = KernelInceptionDistance(
            feature=_Given(d),
            subsets=self.kid_subsets,
            subset_size=subset,
            reset_real_features=False,
            sync_on_compute=False,
        )
        kid.update(real_kid, real=True)
        kid.update(fake, real=False)
        kid_mean, kid_std = kid.compute()
        out: dict[str, Any] = {
            "fid": float(fid.compute()),
            "kid_mean": float(kid_mean),
            "kid_std": float(kid_std),
            "kid_subset_size": subset,
            "n_fake": int(fake.shape[0]),
            "n_real": self._real_n,
            "feature_net": self.features.identity,
        }
        if self.want_pr:
            out["precision"], out["recall"] = precision_recall(real_kid, fake, self.pr_k, device=self.device)
            out["pr_k"], out["pr_n_real"] = self.pr_k, int(real_kid.shape[0])
        if not self.want_is:
            out["is_skipped"] = "inception_score=false"
        elif not self.features.has_logits:
            k = self.settings_prefix
            out["is_skipped"] = (
                f"the feature network {self.features.identity} has no classifier head, so IS cannot be "
                f"computed; use {k}feature=fidelity (torch-fidelity weights, downloaded once when online, "
                f"or {k}weights=<local .pth>)"
            )
        else:
            out["is_mean"], out["is_std"] = inception_score(torch.cat(self._fake_logits), self.is_splits)
        return out


def precision_recall(
    real: Tensor, fake: Tensor, k: int = 3, device: torch.device | str = "cpu", chunk: int = 2048
) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) of feature sets real (N, D) and
    fake (M, D). Each sample's k-NN radius is the distance to its k-th nearest neighbour in its
    own set (itself excluded); precision is the share of fake samples inside at least one real
    sample's ball (quality), recall the share of real samples inside at least one fake sample's
    ball (coverage). Euclidean distances in float32, ``chunk`` rows at a time."""
    if min(real.shape[0], fake.shape[0]) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} real and fake samples")
    real, fake = real.to(device, torch.float32), fake.to(device, torch.float32)

    def radii(x: Tensor) -> Tensor:  # (N,) distance to the k-th neighbour, itself excluded
        return torch.cat([torch.cdist(x[i : i + chunk], x).kthvalue(k + 1, dim=1).values
                          for i in range(0, x.shape[0], chunk)])  # fmt: skip

    def covered(points: Tensor, centres: Tensor, r: Tensor) -> float:  # share of points in some ball
        inside = [(torch.cdist(points[i : i + chunk], centres) <= r[None, :]).any(dim=1)
                  for i in range(0, points.shape[0], chunk)]  # fmt: skip
        return float(torch.cat(inside).float().mean())

    return covered(fake, real, radii(real)), covered(real, fake, radii(fake))


def inception_score(logits: Tensor, splits: int = 10, seed: int = 2020) -> tuple[float, float]:
    """Inception Score (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))) on each of ``splits``
    parts of a fixed permutation of the samples; mean and standard deviation over the parts.

    As the original code and torch-fidelity (``isc_features_to_metric``: the same permutation,
    ``np.random.RandomState(2020)``, and the same split boundaries) compute it: the standard
    deviation divides by the number of splits, so one split gives 0, not NaN. torchmetrics'
    ``InceptionScore`` uses the unbiased estimate and a permutation from the global RNG.
    ``logits`` (N, classes); float64 inside.
    """
    n = logits.shape[0]
    perm = torch.from_numpy(np.random.RandomState(seed).permutation(n))
    log_p = torch.log_softmax(logits.detach().cpu().double()[perm], dim=1)  # log p(y|x), (N, K)
    scores = []
    for i in range(splits):
        part = log_p[i * n // splits : (i + 1) * n // splits]
        log_py = part.exp().mean(dim=0, keepdim=True).log()  # log p(y) over the part
        scores.append((part.exp() * (part - log_py)).sum(dim=1).mean().exp())
    s = torch.stack(scores)
    return float(s.mean()), float(s.std(unbiased=False))


def real_cache_file(cache_dir: str | Path, meta: dict, identity: str) -> Path:
    """``<cache_dir>/real_<res>px_<hash>_n<n_real>.pt``: the hash over the data description (less
    ``n_real``, which the name carries, so ``cached_counts`` can list them) and the network."""
    described = {k: v for k, v in meta.items() if k != "n_real"}
    key = cache_key({"meta": described, "net": identity})
    return Path(cache_dir) / f"real_{meta.get('image_size', 'x')}px_{key}_n{meta.get('n_real', 'x')}.pt"


def cached_counts(cache_dir: str | Path, meta: dict, identity: str) -> list[int]:
    """The ``n_real`` of every real-statistics file cached for this data and network."""
    stem = real_cache_file(cache_dir, {**meta, "n_real": 0}, identity).name[: -len("0.pt")]
    return sorted(
        int(p.name[len(stem) : -3])
        for p in Path(cache_dir).glob(f"{stem}*.pt")
        if p.name[len(stem) : -3].isdigit()
    )


class FeatureProgress:
    """Feature extraction's progress, logged at most every ``every`` s:
    ``<what>: 4,000/50,000 images, 31.2 img/s, ETA 0:24:43``."""

    def __init__(self, what: str, total: int, every: float = 10.0) -> None:
        self.what, self.total, self.every = what, total, every
        self.t0 = self.last = time.perf_counter()

    def update(self, done: int) -> None:
        now = time.perf_counter()
        if now - self.last < self.every and done < self.total:
            return
        self.last = now
        rate = done / max(now - self.t0, 1e-9)
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        log.info(
            "%s: %s/%s images, %.1f img/s, ETA %s",
            self.what,
            f"{done:,}",
            f"{self.total:,}",
            rate,
            duration(eta),
        )
