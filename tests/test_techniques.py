"""Stabilisation techniques: each option's behaviour (unit) and a short real run (smoke)."""

import pytest
import torch

from ganlab.assembly import gan_module
from ganlab.augment import DiffAugment, InstanceNoise
from ganlab.losses import BCELoss, LSGANLoss, SiameseLoss
from ganlab.models import DCGANDiscriminator, DCGANGenerator
from ganlab.models.attention import SelfAttention
from ganlab.optim import GANOptimizers
from tests.conftest import TINY, compose_cfg


def tiny_module(**kw):
    G, D = DCGANGenerator(32, 3, nz=8, ngf=8), DCGANDiscriminator(32, 3, ndf=8)
    return gan_module(G, D, BCELoss(), GANOptimizers.adam(), nz=8, **kw)


def test_ema_update_is_the_half_life_lerp():
    m = tiny_module(ema_half_life_kimg=0.064, ema_rampup=None)  # half-life 64 images
    ema0 = [p.clone() for p in m.G_ema.parameters()]
    with torch.no_grad():
        for p in m.G.parameters():
            p.add_(1.0)
    m.ema.update(m.G_ema, m.G, m.ema.weight(m.progress.images_seen, 64))  # one half-life: beta = 0.5
    for e0, e, p in zip(ema0, m.G_ema.parameters(), m.G.parameters()):
        assert torch.allclose(e, 0.5 * e0 + 0.5 * p)
    assert not any(p.requires_grad for p in m.G_ema.parameters())


def test_ema_rampup_shortens_early_half_life():
    m = tiny_module(ema_half_life_kimg=10, ema_rampup=0.05)
    m.progress.images_seen = 640  # half-life min(10000, 640 * 0.05 = 32) images
    before = [p.clone() for p in m.G_ema.parameters()]
    with torch.no_grad():
        for p in m.G.parameters():
            p.add_(1.0)
    m.ema.update(m.G_ema, m.G, m.ema.weight(m.progress.images_seen, 32))
    e, b, p = next(m.G_ema.parameters()), before[0], next(m.G.parameters())
    assert torch.allclose(e, 0.5 * b + 0.5 * p)


def test_generate_uses_ema():
    m = tiny_module(ema_half_life_kimg=1)
    with torch.no_grad():
        for p in m.G_ema.parameters():
            p.zero_()
    assert torch.equal(m.generate(torch.randn(2, 8)), torch.zeros(2, 3, 32, 32))  # tanh(0) everywhere


def test_spectral_norm_bounds_the_weights():
    D = DCGANDiscriminator(32, 3, ndf=8, spectral_norm=True, norm="none")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in D.modules())
    D.train()
    for _ in range(30):  # power iterations converge during training forwards
        D(torch.randn(4, 3, 32, 32))
    for m in D.modules():
        if isinstance(m, torch.nn.Conv2d):
            sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
            assert sigma == pytest.approx(1.0, abs=0.05)
    G = DCGANGenerator(32, 3, nz=8, ngf=8, spectral_norm=True)
    assert G(torch.randn(2, 8)).shape == (2, 3, 32, 32)


def test_self_attention_starts_as_identity_and_is_placed_at_its_resolution():
    attn = SelfAttention(16)
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(attn(x), x)  # gamma = 0
    with torch.no_grad():
        attn.gamma.fill_(1.0)
    assert not torch.equal(attn(x), x)
    G = DCGANGenerator(64, 3, nz=8, ngf=8, attention_res=32)
    shapes = []
    hook = lambda mod, inp, out: shapes.append(tuple(out.shape[-2:]))  # noqa: E731
    for m in G.modules():
        if isinstance(m, SelfAttention):
            m.register_forward_hook(hook)
    assert G(torch.randn(2, 8)).shape == (2, 3, 64, 64) and shapes == [(32, 32)]
    D = DCGANDiscriminator(64, 3, ndf=8, attention_res=16)
    assert sum(isinstance(m, SelfAttention) for m in D.modules()) == 1 and D(
        torch.randn(2, 3, 64, 64)
    ).shape == (2,)
    with pytest.raises(ValueError, match="attention_res"):
        DCGANGenerator(32, 3, attention_res=32)


def test_diffaugment_is_differentiable_and_changes_images():
    torch.manual_seed(0)
    x = (torch.rand(4, 3, 16, 16) * 2 - 1).requires_grad_(True)
    aug = DiffAugment("color,translation,cutout")
    y = aug(x)
    assert y.shape == x.shape and not torch.allclose(y, x)
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # G's gradient passes through
    cut = DiffAugment("cutout", cutout_ratio=0.5)(torch.ones(8, 1, 16, 16))
    assert ((cut == 0).float().mean(dim=(1, 2, 3)) > 0).all()  # every image has a hole
    shifted = DiffAugment("translation")(torch.ones(64, 1, 16, 16))
    assert (shifted == 0).any()  # zero padding shifted in somewhere
    with pytest.raises(ValueError, match="policy"):
        DiffAugment("rotate")


def test_instance_noise_anneals_to_zero():
    noise = InstanceNoise(sigma=0.2, anneal_kimg=1)
    x = torch.zeros(1000, 3, 4, 4)
    assert noise(x).std().item() == pytest.approx(0.2, rel=0.05)
    noise.on_iteration(500)
    assert noise.current_sigma() == pytest.approx(0.1)
    noise.on_iteration(2000)
    assert torch.equal(noise(x), x)


def test_r1_penalty_by_hand():
    """D(x) = sum(w * x): grad_x = w, so R1 = ||w||^2 for every sample."""
    w = torch.tensor([[[[1.0, -2.0]]]])  # (1, 1, 1, 2)

    def D(x):
        return (x * w).flatten(1).sum(1)

    real, fake = torch.rand(3, 1, 1, 2), torch.rand(3, 1, 1, 2)
    plain, _ = BCELoss().d_loss(D, real, fake)
    loss = BCELoss(r1_gamma=2.0, r1_every=4)
    lazy, stats = loss.d_loss(D, real, fake, step=8)
    assert stats["r1"].item() == pytest.approx(5.0)
    assert (lazy - plain).item() == pytest.approx(2.0 / 2 * 5.0 * 4)  # gamma/2 * R1 * interval
    skipped, stats = loss.d_loss(D, real, fake, step=9)
    assert "r1" not in stats and skipped.item() == pytest.approx(plain.item())
    with pytest.raises(ValueError, match="R1"):
        SiameseLoss(r1_gamma=1.0)


def test_least_squares_by_hand():
    lr, lf = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    d, _ = LSGANLoss().d_loss(lambda x: x, lr, lf)
    assert d.item() == pytest.approx(0.5 * ((1 + 4) / 2) + 0.5 * ((0.25 + 9) / 2))
    g, _ = LSGANLoss().g_loss(lambda x: x, lr, lf)
    assert g.item() == pytest.approx(0.5 * ((0.25 + 16) / 2))


@pytest.mark.parametrize(
    "overrides",
    [
        ["model.ema_half_life_kimg=0.1"],
        [
            "model.discriminator.spectral_norm=true",
            "model.discriminator.norm=none",
            "model.generator.spectral_norm=true",
        ],
        ["loss.r1_gamma=1", "loss.r1_every=2"],
        ["model.d_augment=[{_target_: ganlab.augment.DiffAugment}]"],
        ["model.d_augment=[{_target_: ganlab.augment.InstanceNoise, sigma: 0.1, anneal_kimg: 1}]"],
        ["model.generator.attention_res=16", "model.discriminator.attention_res=8"],
        ["loss=lsgan"],
    ],
    ids=["ema", "spectral-norm", "r1", "diffaugment", "instance-noise", "attention", "lsgan"],
)
def test_each_technique_trains(overrides, tmp_path, image_dir):
    from ganlab.train import train

    cfg = compose_cfg([*TINY, "data=image_folder", f"data.root={image_dir}", *overrides], tmp_path)
    result = train(cfg)
    m = result["metrics"]
    assert result["iterations"] == 5
    assert all(v == v for v in m.values())  # no NaN in any logged value
    if "loss.r1_gamma=1" in overrides:
        assert "train/r1" in m and m["train/r1"] >= 0  # the penalty ran and was logged


def test_all_techniques_train_together(tmp_path, image_dir):
    from ganlab.checkpoints import load_generator
    from ganlab.train import train

    cfg = compose_cfg(
        [
            *TINY,
            "data=image_folder",
            f"data.root={image_dir}",
            "loss=lsgan",
            "loss.r1_gamma=1",
            "loss.r1_every=2",
            "model.ema_half_life_kimg=0.1",
            "model.discriminator.spectral_norm=true",
            "model.discriminator.norm=none",
            "model.generator.attention_res=16",
            "model.discriminator.attention_res=8",
            "model.d_augment=[{_target_: ganlab.augment.DiffAugment},"
            " {_target_: ganlab.augment.InstanceNoise, sigma: 0.1, anneal_kimg: 1}]",
        ],
        tmp_path,
    )
    result = train(cfg)
    m = result["metrics"]
    assert result["iterations"] == 5 and m["train/loss_d"] == m["train/loss_d"] and m["train/loss_g"] >= 0
    gen = load_generator(tmp_path / "checkpoints" / "last.ckpt")
    assert gen.ema  # samples and metrics come from G_ema
    sd = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert not torch.equal(sd["G_ema.body.0.weight"], sd["G.body.0.weight"])
