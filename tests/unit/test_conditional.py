"""Class-conditional GANs: labels from every data module to the loss, conditional and ResNet
backbones, class/truncation/selection in generation, intra-class FID and precision/recall."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ganlab.data import CIFAR10DataModule, DatasetError, ImageFolderDataModule, MNISTDataModule
from ganlab.data.datasets import FASHION_MNIST_CLASSES
from ganlab.losses import BCELoss, HingeLoss
from ganlab.losses.step import Step
from ganlab.metrics.gan_metrics import precision_recall
from ganlab.models import DCGANDiscriminator, DCGANGenerator, ResNetDiscriminator, ResNetGenerator
from ganlab.run.checks import check_model
from ganlab.training.build import gan_module
from ganlab.training.optim import GANOptimizers

SMALL = dict(batch_size=4, num_workers=0, image_size=32)


def labelled_batch(dm):
    """The first training batch as the module receives it (after the device-side transform)."""
    dm.setup("fit")
    return dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)


# -- backbones ----------------------------------------------------------------------------------------
def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# (image size) -> (G, D) parameters at ngf = ndf = 64, nz 128, 3 channels: the counts documented in
# ganlab/models/resnet.py.
RESNET_COUNTS = {32: (4_276_739, 1_053_825), 64: (12_220_675, 19_542_721), 128: (32_150_787, 38_419_137)}


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
    plain, _ = HingeLoss().d_loss(D, Step(real, fake, y))
    with_aux, stats = HingeLoss(acgan_weight=1.0).d_loss(D, Step(real, fake, y))
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
