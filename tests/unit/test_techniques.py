"""Stabilisation techniques: each option's behaviour (unit) and a short real run (smoke)."""

import pytest
import torch

from ganlab.assembly import gan_module
from ganlab.augment import DiffAugment, InstanceNoise
from ganlab.losses import BCELoss, LSGANLoss, SiameseLoss
from ganlab.models import DCGANDiscriminator, DCGANGenerator
from ganlab.models.attention import SelfAttention
from ganlab.optim import GANOptimizers


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
