"""Class-conditional GANs: labels from every data module to the loss, conditional and ResNet
backbones, class/truncation/selection in generation, intra-class FID and precision/recall."""

from __future__ import annotations

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

from ganlab.assembly import gan_module
from ganlab.checkpoints import load_generator
from ganlab.data import CIFAR10DataModule, DatasetError, ImageFolderDataModule, MNISTDataModule
from ganlab.data.datasets import FASHION_MNIST_CLASSES
from ganlab.losses import BCELoss, HingeLoss
from ganlab.metrics.gan_metrics import precision_recall
from ganlab.models import DCGANDiscriminator, DCGANGenerator, ResNetDiscriminator, ResNetGenerator
from ganlab.optim import GANOptimizers
from ganlab.train import train
from ganlab.validate import check_model
from tests.conftest import TINY, compose_cfg

SMALL = dict(batch_size=4, num_workers=0, image_size=32)


def labelled_batch(dm):
    """The first training batch as the module receives it (after the device-side transform)."""
    dm.setup("fit")
    return dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)


# -- labels from each data module ------------------------------------------------------------------
def test_image_folder_labels_follow_the_sub_folders(image_dir):
    """The fixture's images sit in class_0/, class_1/, class_2/ (some one folder deeper): each
    label is the first-level folder; data.classes filters and orders the classes."""
    dm = ImageFolderDataModule(str(image_dir), conditional=True, **SMALL)
    assert dm.class_names() == ["class_0", "class_1", "class_2"]
    images, labels = labelled_batch(dm)
    assert images.shape == (4, 3, 32, 32) and labels.dtype == torch.int64 and labels.shape == (4,)
    ds = dm.train_set
    assert [ds[i][1] for i in range(len(ds))] == [
        int(p.relative_to(image_dir).parts[0][-1]) for p in ds.base.files
    ]
    picked = ImageFolderDataModule(str(image_dir), conditional=True, classes=["class_2", "class_0"], **SMALL)
    picked.setup()
    assert picked.class_names() == ["class_2", "class_0"]
    files = picked.train_set.base.files
    assert {p.relative_to(image_dir).parts[0] for p in files} == {"class_0", "class_2"}
    assert picked.labels.tolist() == [
        0 if f.relative_to(image_dir).parts[0] == "class_2" else 1 for f in files
    ]
    with pytest.raises(DatasetError, match=r"data.classes \['cat'\] are not folders"):
        ImageFolderDataModule(str(image_dir), conditional=True, classes=["cat"], **SMALL).setup()


def test_cached_labels_match_the_files(image_dir, tmp_path):
    plain = ImageFolderDataModule(str(image_dir), conditional=True, **SMALL)
    plain.setup()
    for resident in (False, True):
        dm = ImageFolderDataModule(
            str(image_dir),
            conditional=True,
            cache=True,
            cache_dir=str(tmp_path),
            device_resident=resident,
            **SMALL,
        )
        dm.setup()
        batch = next(iter(dm.train_dataloader()))
        keys = batch if resident else batch[1]
        _, labels = dm.on_after_batch_transfer(batch, 0)
        assert labels.tolist() == [int(plain.labels[int(k) % len(plain.labels)]) for k in keys]


def test_flat_folder_cannot_be_conditional(tmp_path):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    with pytest.raises(DatasetError, match="no sub-folders"):
        ImageFolderDataModule(str(tmp_path), conditional=True, **SMALL).class_names()


def test_cifar10_labels_remapped_to_the_class_filter(cifar_dir):
    """The fixture's labels are (batch * 20 + i) % 10; with classes [dog, cat] (5 and 3) they
    become 0 and 1, in that order."""
    dm = CIFAR10DataModule(str(cifar_dir), classes=["dog", "cat"], conditional=True, **SMALL)
    dm.setup()
    raw = [(b * 20 + i) % 10 for b in range(5) for i in range(20)]
    expected = [{5: 0, 3: 1}[c] for c in raw if c in (5, 3)]
    assert dm.labels.tolist() == expected and dm.class_names() == ["dog", "cat"]
    images, labels = labelled_batch(dm)
    assert set(labels.tolist()) <= {0, 1} and images.shape == (4, 3, 32, 32)


def test_fashion_mnist_labels_from_the_idx_file(idx_dir):
    dm = MNISTDataModule(str(idx_dir), channels=1, conditional=True, **SMALL)
    dm.setup()
    assert dm.labels.tolist() == [i % 10 for i in range(48)]
    assert dm.class_names() == list(FASHION_MNIST_CLASSES)
    two = MNISTDataModule(str(idx_dir), channels=1, conditional=True, classes=["sneaker", "bag"], **SMALL)
    two.setup()
    # images 7, 8, 17, 18, ... 47 (labels i % 10): sneaker (7) -> 0, bag (8) -> 1, in file order
    assert two.labels.tolist() == [0, 1, 0, 1, 0, 1, 0, 1, 0]
    images, labels = labelled_batch(two)
    assert images.shape == (4, 1, 32, 32) and set(labels.tolist()) <= {0, 1}


def test_labels_reach_the_loss(cifar_dir, tmp_path, monkeypatch):
    """A conditional run: every D and G loss call gets the minibatch's labels, in the class
    filter's range, and the checkpoint names the classes."""
    seen = []
    d_loss, g_loss = BCELoss.d_loss, BCELoss.g_loss

    def spy_d(self, D, real, fake, step=0, labels=None):
        seen.append(("d", real.shape[0], labels.clone()))
        return d_loss(self, D, real, fake, step, labels)

    def spy_g(self, D, real, fake, labels=None):
        seen.append(("g", real.shape[0], labels.clone()))
        return g_loss(self, D, real, fake, labels)

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


# -- backbones ----------------------------------------------------------------------------------------
def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# (image size) -> (G, D) parameters at ngf = ndf = 64, nz 128, 3 channels: the counts documented in
# ganlab/models/resnet.py.
RESNET_COUNTS = {32: (4_276_739, 1_053_825), 64: (12_220_675, 19_542_721), 128: (32_150_787, 38_419_137)}


@pytest.mark.parametrize("size", sorted(RESNET_COUNTS))
def test_resnet_shapes_and_parameter_counts(size):
    G, D = ResNetGenerator(size, 3, nz=128), ResNetDiscriminator(size, 3)
    assert (n_params(G), n_params(D)) == RESNET_COUNTS[size]
    x = G(torch.randn(2, 128))
    assert x.shape == (2, 3, size, size) and x.abs().max() <= 1 and D(x).shape == (2,)
    Gc, Dc = ResNetGenerator(size, 3, nz=128, num_classes=5), ResNetDiscriminator(size, 3, num_classes=5)
    y = torch.tensor([0, 4])
    assert Gc(torch.randn(2, 128), y).shape == (2, 3, size, size) and Dc(x, y).shape == (2,)
    # conditional BN (ganlab.models.conditional, class embedding of 128 and two linear maps to C
    # channels) in place of BN's 2C affine parameters, twice per block; projection: C x classes in D
    widths = {32: [256] * 4, 64: [1024, 512, 256, 128, 64], 128: [1024, 1024, 512, 256, 128, 64]}[size]
    per_bn = [c for a, b in zip(widths[:-1], widths[1:]) for c in (a, b)]
    assert n_params(Gc) - n_params(G) == sum(5 * 128 + 2 * 128 * c - 2 * c for c in per_bn)
    assert n_params(Dc) - n_params(D) == 5 * D.feature_dim


def test_resnet_attention_and_acgan_head():
    G = ResNetGenerator(64, 3, nz=16, ngf=8, attention_res=32)
    D = ResNetDiscriminator(64, 3, ndf=8, num_classes=3, aux_classifier=True, attention_res=16)
    x = G(torch.randn(2, 16))
    assert D(x, torch.tensor([0, 2])).shape == (2, 4)  # (B, 1 + K): logit, then 3 class logits
    with pytest.raises(ValueError, match="projection=true .* or model.discriminator.aux_classifier"):
        ResNetDiscriminator(32, 3, num_classes=3, projection=False)


def test_conditional_dcgan_labels_change_the_output():
    torch.manual_seed(0)
    G = DCGANGenerator(32, 3, nz=8, ngf=8, num_classes=2)
    with torch.no_grad():
        G.body[1].gain.weight.fill_(0.1)  # the classes' embeddings now scale the first up-stage differently
    G.eval()
    z = torch.randn(3, 8)
    a, b = G(z, torch.zeros(3, dtype=torch.long)), G(z, torch.ones(3, dtype=torch.long))
    assert a.shape == (3, 3, 32, 32) and not torch.allclose(a, b)
    D = DCGANDiscriminator(32, 3, ndf=8, num_classes=2)
    assert D(a, torch.tensor([0, 1, 1])).shape == (3,)


def test_every_loss_works_conditionally_with_an_acgan_term():
    """The loss objects take the labels; the ACGAN term adds D's class cross-entropy."""
    D = DCGANDiscriminator(32, 3, ndf=8, num_classes=3, aux_classifier=True)
    real, fake, y = torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0])
    plain, _ = HingeLoss().d_loss(D, real, fake, labels=y)
    with_aux, stats = HingeLoss(acgan_weight=1.0).d_loss(D, real, fake, labels=y)
    cls = D(real, y)[:, 1:], D(fake, y)[:, 1:]
    ce = torch.nn.functional.cross_entropy(cls[0], y) + torch.nn.functional.cross_entropy(cls[1], y)
    assert with_aux.item() == pytest.approx(plain.item() + ce.item(), rel=1e-5)
    assert "d_class_acc" in stats
    G = DCGANGenerator(32, 3, nz=8, ngf=8)
    m = gan_module(G, DCGANDiscriminator(32, 3, ndf=8), BCELoss(acgan_weight=1.0), GANOptimizers.adam(), nz=8)
    with pytest.raises(ValueError, match="aux_classifier=true"):
        check_model(m)  # at build time (ganlab.train.build)


def test_fixed_noise_grid_has_one_row_per_class():
    G, D = DCGANGenerator(32, 1, nz=8, ngf=8, num_classes=3), DCGANDiscriminator(32, 1, ndf=8, num_classes=3)
    m = gan_module(
        G,
        D,
        BCELoss(),
        GANOptimizers.adam(),
        nz=8,
        n_fixed=16,
        num_classes=3,
        class_names=["a", "b", "c"],
    )
    assert m.grid_columns == 5 and m.fixed_y.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    assert torch.equal(m.fixed_z[:5], m.fixed_z[5:10])  # the same latents in every row


# -- a conditional G learns its classes ----------------------------------------------------------------
def write_two_colours(root: Path, n: int = 128) -> Path:
    r = np.random.default_rng(0)
    for name, colour in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
        (root / name).mkdir(parents=True)
        for i in range(n):
            a = np.clip(np.array(colour)[None, None] + r.normal(0, 20, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(a).save(root / name / f"{i}.png")
    return root


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
    classes, a grid with one row per class."""
    cfg = compose_cfg(
        [
            "experiment=conditional_fashion_mnist",
            f"data.root={idx_dir}",
            "data.batch_size=8",
            "data.num_workers=0",
            "train.max_iterations=3",
            "model.generator.ngf=8",
            "model.discriminator.ndf=8",
            "logger=csv",
            "trainer.enable_progress_bar=false",
            "callbacks.report=null",
        ],
        tmp_path,
    )
    result = train(cfg)
    assert result["iterations"] == 3
    grid = Image.open(tmp_path / "samples" / "latest.png")
    assert grid.size == (2 + 8 * 34, 2 + 10 * 34)  # 8 latents per row, 10 class rows (32 px + 2 padding)


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


def test_generate_class_truncation_and_top_d_selection(conditional_ckpt, tmp_path):
    from ganlab.checkpoints import load_discriminator
    from ganlab.generate import d_scores, truncated_latent

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
    cand = truncated_latent(gen.sample_z, 16, 0.7, torch.Generator().manual_seed(0))
    y = gen.labels(16, "class_2")
    all_scores = d_scores(load_discriminator(conditional_ckpt), gen(cand, y), y, 5)
    assert scores == pytest.approx(all_scores.sort(descending=True).values[:4].tolist(), rel=1e-4)
    assert [int(t["ganlab.latent_index"]) for t in texts] == all_scores.argsort(descending=True)[:4].tolist()

    from omegaconf import OmegaConf

    from ganlab.errors import UsageError
    from ganlab.generate import generate

    bad = OmegaConf.load(Path(__file__).parents[1] / "ganlab" / "conf" / "generate.yaml")
    bad.merge_with({"ckpt": str(conditional_ckpt), "n": 4, "out": str(tmp_path / "bad"), "class": "dog"})
    with pytest.raises(
        UsageError, match=r"class=dog is not a class of .*\['class_0', 'class_1', 'class_2'\]"
    ):
        generate(bad)


# -- evaluation -------------------------------------------------------------------------------------------
def test_precision_recall_by_hand():
    """1-D points, k=1. Real {0, 1, 2, 10}: radii (distance to the nearest other) 1, 1, 1, 8.
    Fake {0.5, 5, 30}: radii 4.5, 4.5, 25. Precision: 0.5 is within 1 of 0 and 5 within 8 of 10,
    30 is in no real ball -> 2/3. Recall: 0, 1 and 2 are within 4.5 of 0.5, 10 is within 25 of
    30 -> 4/4."""
    real = torch.tensor([[0.0], [1.0], [2.0], [10.0]])
    fake = torch.tensor([[0.5], [5.0], [30.0]])
    p, r = precision_recall(real, fake, k=1)
    assert p == pytest.approx(2 / 3) and r == 1.0
    p, r = precision_recall(real, real + 100, k=1)  # disjoint sets
    assert p == 0.0 and r == 0.0


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """FID by its formula (Heusel et al. 2017), float64 and scipy's sqrtm."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_intra_class_fid_and_precision_recall_in_evaluate(conditional_ckpt, image_dir, tmp_path):
    """ganlab.evaluate on a conditional checkpoint: FID over all classes, per-class FID equal
    to the formula on that class's real and generated features, precision and recall."""
    from ganlab.metrics import GANMetrics, load_feature_net

    args = [
        f"ckpt={conditional_ckpt}",
        "n=30",
        "feature=tiny",
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
    metrics = GANMetrics(load_feature_net("tiny"))
    labels = gen.labels(30)
    fake, _ = metrics.generated_features(gen, gen.sample_z, 30, 7, 0, labels)
    dm = ImageFolderDataModule(str(image_dir), image_size=32, conditional=True, batch_size=8, num_workers=0)
    for c, name in enumerate(gen.class_names):
        real = torch.cat([metrics.extract(b)[0] for b in dm.real_batches(8, label=c)])
        expected = frechet(real.double().numpy(), fake[labels == c].double().numpy())
        assert result["intra_fid"][name] == pytest.approx(expected, rel=1e-3, abs=1e-3), name
    assert math.isfinite(result["fid"])
