"""Class-conditional runs: labels reach the loss, a small conditional G learns its classes, the CPU
recipe trains, and generate/evaluate work per class."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import linalg

from ganlab.checkpoint.generator import load_generator
from ganlab.data import ImageFolderDataModule
from ganlab.losses import BCELoss
from ganlab.train import train
from tests.conftest import CONF, TINY, compose_cfg


# -- a conditional G learns its classes ----------------------------------------------------------------
def write_two_colours(root: Path, n: int = 128) -> Path:
    r = np.random.default_rng(0)
    for name, colour in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
        (root / name).mkdir(parents=True)
        for i in range(n):
            a = np.clip(np.array(colour)[None, None] + r.normal(0, 20, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(a).save(root / name / f"{i}.png")
    return root


# -- generation: class, truncation, selection -----------------------------------------------------------
@pytest.fixture(scope="module")
def conditional_ckpt(tmp_path_factory, image_dir) -> Path:
    run = tmp_path_factory.mktemp("cond_run")
    cfg = compose_cfg(
        [
            *TINY,
            "data=image_folder",
            f"data.root={image_dir}",
            "data.conditional=true",
            "model.discriminator.aux_classifier=true",
            "loss.acgan_weight=1.0",
        ],
        run,
    )
    train(cfg)
    return run / "checkpoints" / "last.ckpt"


def run_module(module: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """FID by its formula (Heusel et al. 2017), float64 and scipy's sqrtm."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_labels_reach_the_loss(cifar_dir, tmp_path, monkeypatch):
    """A conditional run: every D and G loss call gets the minibatch's labels, in the class
    filter's range, and the checkpoint names the classes."""
    seen = []
    d_loss, g_loss = BCELoss.d_loss, BCELoss.g_loss

    def spy_d(self, D, step):
        seen.append(("d", step.real.shape[0], step.labels.clone()))
        return d_loss(self, D, step)

    def spy_g(self, D, step):
        seen.append(("g", step.real.shape[0], step.labels.clone()))
        return g_loss(self, D, step)

    monkeypatch.setattr(BCELoss, "d_loss", spy_d)
    monkeypatch.setattr(BCELoss, "g_loss", spy_g)
    cfg = compose_cfg(
        [
            *TINY,
            "data=cifar10",
            f"data.root={cifar_dir}",
            "data.classes=[cat,dog]",
            "data.conditional=true",
            "model.d_steps_per_g=2",
        ],
        tmp_path,
    )
    train(cfg)
    assert {kind for kind, _, _ in seen} == {"d", "g"}
    assert all(b == 8 and y.shape == (8,) and set(y.tolist()) <= {0, 1} for _, b, y in seen)
    assert len({tuple(y.tolist()) for _, _, y in seen}) > 1  # a fresh minibatch each time
    ck = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ck["ganlab"]["config"]["model"]["class_names"] == ["cat", "dog"]
    assert ck["ganlab"]["config"]["model"]["num_classes"] == 2


def test_mode_seeking_gets_each_batch_latents_and_labels(cifar_dir, tmp_path, monkeypatch):
    """``loss.mode_seeking=1``: every G update adds MSGAN's term on that update's fakes, the
    latents they came from (B, nz) and their labels; the run trains to finite losses."""
    import ganlab.losses.base as base

    seen, term = [], base.mode_seeking_term

    def spy(fake, z, labels=None, eps=1e-5):
        value = term(fake, z, labels, eps)
        seen.append((fake.shape[0], tuple(z.shape), labels.clone(), value.item()))
        return value

    monkeypatch.setattr(base, "mode_seeking_term", spy)
    cfg = compose_cfg([*TINY, "data=cifar10", f"data.root={cifar_dir}", "data.classes=[cat,dog]",
                       "data.conditional=true", "loss.mode_seeking=1"], tmp_path)  # fmt: skip
    train(cfg)
    nz = cfg.model.nz
    assert seen and all(b == 8 and z == (8, nz) and y.shape == (8,) for b, z, y, _ in seen)
    assert all(math.isfinite(v) and v > 0 for *_, v in seen)


def test_conditional_samples_follow_the_requested_class(tmp_path):
    """Red and blue noise images, two classes: after 160 iterations of a small conditional
    DCGAN, class "red" samples are red (R channel above B) and class "blue" samples blue, from
    the same latents."""
    data = write_two_colours(tmp_path / "colours")
    cfg = compose_cfg(
        [
            *TINY,
            "data=image_folder",
            f"data.root={data}",
            "data.conditional=true",
            "data.batch_size=16",
            "trainer.max_epochs=10",
            "callbacks.checkpoint.every_n_iterations=0",
            "callbacks.samples.every_n_iterations=0",
            "trainer.log_every_n_steps=50",
            "optimizer.g.lr=1e-3",
            "optimizer.d.lr=1e-3",
            "model.generator.ngf=32",
            "model.discriminator.ndf=16",
        ],
        tmp_path / "run",
    )
    train(cfg)
    gen = load_generator(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert gen.class_names == ["blue", "red"]
    z = gen.sample_z(32, generator=torch.Generator().manual_seed(1))
    red = gen(z, gen.labels(32, "red")).mean(dim=(0, 2, 3))  # (3,) channel means in [-1, 1]
    blue = gen(z, gen.labels(32, 0)).mean(dim=(0, 2, 3))
    assert red[0] > red[2] + 0.2 and blue[2] > blue[0] + 0.2, (red, blue)


def test_conditional_fashion_mnist_recipe_trains(idx_dir, tmp_path):
    """experiment=conditional_fashion_mnist, shortened, on the Fashion-MNIST fixture: ten
    classes, a grid with one row per class; the images cached and held in memory as the recipe
    ships them (data.cache, data.device_resident), with their labels."""
    cfg = compose_cfg(
        [
            "experiment=conditional_fashion_mnist",
            f"data.root={idx_dir}",
            f"data.cache_dir={tmp_path / 'cache'}",
            "data.batch_size=8",
            "data.num_workers=0",
            "train.max_iterations=3",
            "model.generator.ngf=8",
            "model.discriminator.ndf=8",
            "logger=csv",
            "trainer.enable_progress_bar=false",
            "callbacks.report=null",
            "trainer.log_every_n_steps=1",  # the doctor's probe on every iteration
        ],
        tmp_path,
    )
    assert cfg.data.cache and cfg.data.device_resident
    result = train(cfg)
    assert result["iterations"] == 3
    assert len(list((tmp_path / "cache").glob("images_32px_*.npy"))) == 1
    grid = Image.open(tmp_path / "samples" / "latest.png")
    assert grid.size == (2 + 8 * 34, 2 + 10 * 34)  # 8 latents per row, 10 class rows (32 px + 2 padding)
    # the doctor measured the fakes' spread within the classes of a ten-class batch of 8 (no two
    # of a class in some batches: then over the batch), a finite ratio every time
    rows = list(csv.DictReader(open(next(tmp_path.glob("**/metrics.csv")))))
    spread = [float(r["doctor/diversity"]) for r in rows if r.get("doctor/diversity")]
    assert len(spread) == 3 and all(0 < v < 10 for v in spread)


def test_generate_class_truncation_and_top_d_selection(conditional_ckpt, tmp_path):
    from ganlab.checkpoint.generator import load_discriminator
    from ganlab.generate import d_scores
    from ganlab.models.truncation import truncate, truncated_latent

    z = truncated_latent(
        lambda n, generator: torch.randn(n, 64, generator=generator),
        500,
        0.7,
        torch.Generator().manual_seed(0),
    )
    assert z.abs().max() <= 0.7 and z.std() > 0.3  # truncated, not collapsed

    r = run_module(
        "ganlab.generate",
        [
            f"ckpt={conditional_ckpt}",
            "n=4",
            "out=out",
            "class=class_2",
            "truncation=0.7",
            "select=top_d",
            "keep=0.25",
            "batch_size=5",
        ],
        tmp_path,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    texts = [Image.open(tmp_path / "out" / f"{i:06d}.png").text for i in range(4)]
    assert all(t["ganlab.class"] == "class_2" and t["ganlab.truncation"] == "0.7" for t in texts)
    scores = [float(t["ganlab.d_score"]) for t in texts]
    assert scores == sorted(scores, reverse=True)
    # the kept ones are D's top 4 of the 16 candidates: recompute every candidate's score
    gen = load_generator(conditional_ckpt)
    sample = truncate(gen, 0.7, seed=0)  # G with standing statistics over truncated latents, as generate's
    cand = sample(16, generator=torch.Generator().manual_seed(0))
    y = gen.labels(16, "class_2")
    all_scores = d_scores(load_discriminator(conditional_ckpt), gen(cand, y), y, 5)
    assert scores == pytest.approx(all_scores.sort(descending=True).values[:4].tolist(), rel=1e-4)
    assert [int(t["ganlab.latent_index"]) for t in texts] == all_scores.argsort(descending=True)[:4].tolist()

    from omegaconf import OmegaConf

    from ganlab.generate import generate
    from ganlab.utils.errors import UsageError

    bad = OmegaConf.load(CONF / "generate.yaml")
    bad.merge_with({"ckpt": str(conditional_ckpt), "n": 4, "out": str(tmp_path / "bad"), "class": "dog"})
    with pytest.raises(
        UsageError, match=r"class=dog is not a class of .*\['class_0', 'class_1', 'class_2'\]"
    ):
        generate(bad)


class ThreeClassJudge(torch.nn.Module):
    """A (random) classifier over the fixture's 3 classes, as a TorchScript feature network."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.num_features, self.num_logits, self.input_size = 16, 3, 24
        self.conv, self.head = torch.nn.Conv2d(3, 16, 3, 2, 1), torch.nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.conv(x).relu().mean(dim=(2, 3))
        return f, self.head(f)


def test_intra_class_fid_precision_recall_and_class_accuracy_in_evaluate(
    conditional_ckpt, image_dir, tmp_path
):
    """ganlab.evaluate on a conditional checkpoint with a TorchScript classifier as the feature
    network: FID over all classes, per-class FID equal to the formula on that class's real and
    generated features, precision and recall, and the share classified as the class asked for."""
    from ganlab.metrics import GANMetrics, load_feature_net

    judge = tmp_path / "judge.pt"
    torch.jit.script(ThreeClassJudge()).save(str(judge))
    args = [
        f"ckpt={conditional_ckpt}",
        "n=30",
        f"feature={judge}",
        "kid_subset_size=5",
        "out=ev.json",
        f"cache_dir={tmp_path / 'cache'}",
        "batch_size=7",
    ]
    r = run_module("ganlab.evaluate", args, tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads((tmp_path / "ev.json").read_text())
    assert set(result["intra_fid"]) == {"class_0", "class_1", "class_2"} and 0 <= result["precision"] <= 1
    assert result["intra_fid_mean"] == pytest.approx(np.mean(list(result["intra_fid"].values())))

    gen = load_generator(conditional_ckpt)
    features = load_feature_net(str(judge))
    assert (features.num_features, features.size, features.num_logits) == (16, 24, 3)
    metrics = GANMetrics(features)
    labels = gen.labels(30)
    fake, logits = metrics.generated_features(gen, gen.sample_z, 30, 7, 0, labels)
    assert result["class_accuracy"] == pytest.approx((logits.argmax(1) == labels).float().mean().item())
    judged = logits.argmax(1)
    expected = [[int(((labels == i) & (judged == j)).sum()) for j in range(3)] for i in range(3)]
    assert result["confusion"] == expected and sum(map(sum, expected)) == 30
    for i, name in enumerate(gen.class_names):  # balanced classes: the diagonal over 10 per row
        assert result["class_accuracy_per_class"][name] == pytest.approx(expected[i][i] / 10)
    assert "confusion matrix" in r.stderr + r.stdout
    dm = ImageFolderDataModule(str(image_dir), image_size=32, conditional=True, batch_size=8, num_workers=0)
    for c, name in enumerate(gen.class_names):
        real = torch.cat([metrics.extract(b)[0] for b in dm.real_batches(8, label=c)])
        expected = frechet(real.double().numpy(), fake[labels == c].double().numpy())
        assert result["intra_fid"][name] == pytest.approx(expected, rel=1e-3, abs=1e-3), name
    assert math.isfinite(result["fid"])


@pytest.mark.parametrize("model", ["dcgan", "resnet"])
def test_a_hierarchical_latent_trains_checkpoints_and_samples_truncated(model, image_dir, tmp_path):
    """``model.generator.hierarchical_z=true``: a conditional run trains, its checkpoint loads as
    a generator, and truncated samples (standing statistics) come out of every class."""
    from ganlab.models.truncation import truncate

    cfg = compose_cfg([*TINY, f"model={model}", "data=image_folder", f"data.root={image_dir}",
                       "data.conditional=true", "model.generator.hierarchical_z=true"], tmp_path)  # fmt: skip
    train(cfg)
    gen = load_generator(tmp_path / "checkpoints" / "last.ckpt")
    assert gen.G.latent is not None and gen.num_classes == 3
    sample = truncate(gen, 0.5, seed=0)
    z = sample(6, generator=torch.Generator().manual_seed(0))
    images = gen(z, gen.labels(6))
    assert z.abs().max() <= 0.5 and images.shape == (6, 3, 32, 32) and images.isfinite().all()
