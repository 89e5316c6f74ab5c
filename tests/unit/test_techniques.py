"""Stabilisation techniques: each option's behaviour (unit) and a short real run (smoke)."""

import pytest
import torch

from ganlab.augment import ADA, DiffAugment, InstanceNoise
from ganlab.losses import BCELoss, LSGANLoss, SiameseLoss
from ganlab.losses.step import LazyTerm, Step
from ganlab.models import DCGANDiscriminator, DCGANGenerator
from ganlab.models.attention import SelfAttention
from ganlab.training.build import gan_module
from ganlab.training.counters import TrainingProgress
from ganlab.training.optim import GANOptimizers


def tiny_module(loss=None, **kw):
    G, D = DCGANGenerator(32, 3, nz=8, ngf=8), DCGANDiscriminator(32, 3, ndf=8)
    return gan_module(G, D, loss or BCELoss(), GANOptimizers.adam(), nz=8, **kw)


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
    noise.on_iteration(TrainingProgress(images_seen=500))
    assert noise.current_sigma() == pytest.approx(0.1)
    noise.on_iteration(TrainingProgress(images_seen=2000))
    assert torch.equal(noise(x), x)


def test_r1_penalty_by_hand():
    """D(x) = sum(w * x): grad_x = w, so R1 = ||w||^2 for every sample."""
    w = torch.tensor([[[[1.0, -2.0]]]])  # (1, 1, 1, 2)

    def D(x):
        return (x * w).flatten(1).sum(1)

    real, fake = torch.rand(3, 1, 1, 2), torch.rand(3, 1, 1, 2)
    plain, _ = BCELoss().d_loss(D, Step(real, fake))
    loss = BCELoss(r1_gamma=2.0, r1_every=4)
    assert loss.lazy_terms() == (LazyTerm("r1", "d", 4),)  # due when the plan says (test_schedule)
    lazy, stats = loss.d_loss(D, Step(real, fake, terms=frozenset({"r1"})))
    assert stats["r1"].item() == pytest.approx(5.0)
    assert (lazy - plain).item() == pytest.approx(2.0 / 2 * 5.0 * 4)  # gamma/2 * R1 * interval
    skipped, stats = loss.d_loss(D, Step(real, fake))
    assert "r1" not in stats and skipped.item() == pytest.approx(plain.item())
    with pytest.raises(ValueError, match="R1"):
        SiameseLoss(r1_gamma=1.0)


def test_least_squares_by_hand():
    lr, lf = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    d, _ = LSGANLoss().d_loss(lambda x: x, Step(lr, lf))
    assert d.item() == pytest.approx(0.5 * ((1 + 4) / 2) + 0.5 * ((0.25 + 9) / 2))
    g, _ = LSGANLoss().g_loss(lambda x: x, Step(lr, lf))
    assert g.item() == pytest.approx(0.5 * ((0.25 + 16) / 2))


def test_ada_p_follows_the_overfitting_heuristic():
    """r_t = 2 P(D(real) > 0) - 1 above the target raises p by images/(speed_kimg * 1000) per
    update (every ``interval`` iterations), below it lowers p; p stays in [0, 1]."""
    ada = ADA(target=0.6, interval=2, speed_kimg=1.0)  # 1k images: p moves fast
    progress = TrainingProgress(last_images=100)
    for it in range(1, 5):  # D 95% right on reals: r_t = 0.9 > 0.6
        progress.iterations = it
        ada.observe({"d_acc_real": torch.tensor(0.95)}, progress)
    assert ada.p.item() == pytest.approx(2 * 2 * 100 / 1000)  # two updates of 2 iterations x 100 images
    for it in range(5, 13):  # D at chance: r_t = 0 < 0.6
        progress.iterations = it
        ada.observe({"d_acc_real": torch.tensor(0.5)}, progress)
    assert ada.p.item() == 0.0
    assert ada.stats()["ada_p"].item() == 0.0


def test_ada_is_differentiable_and_p_controls_the_augmentation():
    x = (torch.rand(16, 3, 32, 32) * 2 - 1).requires_grad_(True)
    off = ADA(p=0.0)
    assert torch.allclose(off(x), x, atol=1e-5)  # p = 0: every transformation left out (scaling by 1)
    on = ADA(p=1.0)
    y = on(x)
    assert y.shape == x.shape and not torch.allclose(y, x)
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_ada_scaling_is_grid_sample_and_twice_differentiable_without_it():
    """ADA's scaling gives what ``grid_sample`` (bilinear, reflection) gives on the scaled grid,
    for zooms in and out (out reads the mirrored border), on square and non-square images; it
    never calls ``grid_sampler_2d``, whose backward CUDA cannot differentiate, so R1's gradient
    of D's gradient through ADA runs (it did not on an H200: 'derivative for
    aten::grid_sampler_2d_backward is not implemented')."""
    import torch.nn.functional as F
    from torch.utils._python_dispatch import TorchDispatchMode

    from ganlab.augment import _scale_bilinear

    torch.manual_seed(0)
    for h, w in ((32, 32), (16, 24)):
        x = torch.randn(6, 3, h, w)
        s = torch.tensor([1.0, 0.5, 0.3, 1.7, 2.0, 0.8])  # 0.3: the grid reaches past one mirror
        theta = torch.zeros(6, 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = 1 / s
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        ref = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        assert torch.allclose(_scale_bilinear(x, s), ref, atol=1e-4)  # float rounding of the grid

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.seen: set[str] = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.seen.add(func.overloadpacket.__name__)
            return func(*args, **(kwargs or {}))

    real = torch.randn(4, 3, 16, 16, requires_grad=True)
    D = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.Softplus(), torch.nn.Flatten(), torch.nn.LazyLinear(1)
    )
    D(real)  # materialise the lazy layer
    with Ops() as ops:  # R1 as the StyleGAN2 loss computes it: the gradient of D(aug(real)) w.r.t. real
        (grad,) = torch.autograd.grad(D(ADA(p=1.0)(real)).sum(), real, create_graph=True)
        grad.square().sum().backward()
    assert not any("grid_sampler" in op for op in ops.seen) and "gather" in ops.seen
    # the weights (not the biases, which leave the input gradient alone) get R1's gradient
    assert D[0].weight.grad.abs().sum() > 0 and torch.isfinite(D[0].weight.grad).all()


def test_standing_statistics_keep_the_scale_of_truncated_samples():
    """BatchNorm's running statistics from full-size z shrink the activations of truncated z in
    eval mode (dim images); recomputed over truncated z (BigGAN's standing statistics) the output's
    spread comes back to that of full-size z, and G itself is left as it was."""
    from ganlab.models.truncation import standing_statistics, truncated_latent

    torch.manual_seed(0)
    G = DCGANGenerator(32, 1, nz=16, ngf=8)
    for m in G.modules():  # weights of a trained G's scale (DCGAN's init N(0, 0.02) keeps tanh near 0)
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            torch.nn.init.normal_(m.weight, 0, 0.3)
    G.train()
    with torch.no_grad():
        for _ in range(20):  # running statistics of full-size z, as training leaves them
            G(torch.randn(64, 16))
    G.eval()
    g = torch.Generator().manual_seed(1)

    def truncated(n):
        return truncated_latent(lambda m, generator: torch.randn(m, 16, generator=generator), n, 0.3, g)

    with torch.no_grad():
        full = G(torch.randn(256, 16, generator=g)).std()
        plain = G(truncated(256)).std()
        standing = standing_statistics(G, truncated, batches=8, batch_size=64)
        restored = standing(truncated(256)).std()
    assert plain < 0.6 * full  # truncation without standing statistics: the spread collapses
    assert abs(restored / full - 1) < abs(plain / full - 1) and restored > 0.6 * full
    assert not G.training and G is not standing


def test_truncation_narrows_a_constant_input_generator_under_standing_statistics():
    """Why ``constant_input``: in plain DCGAN, standing statistics renormalise the truncated z at
    G's first BatchNorm and the samples vary as much as untruncated ones; with z reaching G only
    through the blocks' scales and shifts, which follow the normalisation, the samples of one
    class vary less and less as the threshold falls."""
    from ganlab.models.truncation import standing_statistics, truncated_latent

    def spread(constant_input: bool) -> list[float]:
        torch.manual_seed(0)
        G = DCGANGenerator(32, 1, nz=32, ngf=8, num_classes=3, hierarchical_z=constant_input,
                           constant_input=constant_input)  # fmt: skip
        g = torch.Generator().manual_seed(0)
        out = []
        prior = lambda m, generator: torch.randn(m, 32, generator=generator)  # noqa: E731
        zeros = lambda n: torch.zeros(n, dtype=torch.long)  # noqa: E731  (class 0)
        for t in (None, 0.8, 0.4):
            S = standing_statistics(G, lambda n, t=t: truncated_latent(prior, n, t, g), zeros, batches=4)
            with torch.no_grad():
                x = S(truncated_latent(prior, 300, t, torch.Generator().manual_seed(1)), zeros(300))
            out.append(x.std(0).mean().item())  # per-pixel spread across samples of class 0
        return out

    plain, constant = spread(False), spread(True)
    assert max(plain) / min(plain) < 1.03  # truncation undone by the renormalisation
    assert constant[0] > constant[1] > constant[2] and constant[2] < 0.8 * constant[0]


def test_the_plan_decides_every_lazy_term_from_the_counters():
    """D's terms count D updates (k = 2 per iteration), G's count G updates; nothing else
    decides: a loss only declares its terms (``GANLoss.lazy_terms``)."""
    from ganlab.training.schedule import Schedule

    terms = (LazyTerm("r1", "d", 3), LazyTerm("pl", "g", 4))
    schedule, progress = Schedule(d_steps_per_g=2), TrainingProgress()
    seen = []
    for _ in range(5):
        plan = schedule.plan(progress, terms)
        seen.append(([sorted(t) for t in plan.d], sorted(plan.g_terms)))
        progress.advance(8, len(plan.d), 0, int(plan.g))
    assert seen == [
        ([["r1"], []], ["pl"]),  # D updates 0, 1; G update 0
        ([[], ["r1"]], []),  # 2, 3; 1
        ([[], []], []),  # 4, 5; 2
        ([["r1"], []], []),  # 6, 7; 3
        ([[], ["r1"]], ["pl"]),  # 8, 9; 4
    ]
    assert schedule.plan(progress).d == (frozenset(), frozenset())  # a loss without lazy terms


def test_a_loss_written_for_the_old_signatures_keeps_working(caplog):
    """``d_loss(D, real, fake, step, labels)`` / ``g_loss(D, real, fake, labels, z)`` (ganlab 0.2):
    the module adapts it and says once how to update it."""

    class OldLoss(BCELoss):
        seen = []

        def d_loss(self, D, real, fake, step=0, labels=None):
            self.seen.append(("d", real.shape, fake.requires_grad))
            return super().d_loss(D, Step(real, fake, labels))

        def g_loss(self, D, real, fake, labels=None, z=None):
            self.seen.append(("g", z.shape, fake.requires_grad))
            return super().g_loss(D, Step(real, fake, labels, z))

    with caplog.at_level("WARNING"):
        m = tiny_module(loss=OldLoss())
    assert "OldLoss.d_loss/g_loss take(s) ganlab 0.2's arguments" in caplog.text
    assert "d_loss(self, D, step)" in caplog.text
    opt_g, opt_d = m.optim.build(m.G.parameters(), m.D.parameters())
    m._g_params = list(m.G.parameters())
    plan = m.schedule.plan(m.progress, m.lazy_terms)
    real = torch.rand(4, 3, 32, 32) * 2 - 1
    out = m.iteration(real, plan, opt_g, opt_d, lambda loss, inputs=None: loss.backward(), None)
    assert {"loss_d", "loss_g"} <= set(out.logs)
    assert OldLoss.seen == [("d", (4, 3, 32, 32), False), ("g", (4, 8), True)]
