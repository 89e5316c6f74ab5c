"""Unit: every loss against values computed by hand from its formula."""

import math

import pytest
import torch

from ganlab.losses import (
    BCELoss,
    HingeLoss,
    LabelNoise,
    MinimaxLoss,
    RaSGANLoss,
    RSGANLoss,
    SiameseLoss,
)
from ganlab.losses.step import Step

LR = torch.tensor([2.0, -1.0])  # D(x) logits
LF = torch.tensor([0.5, -3.0])  # D(G(z)) logits


def sp(x):  # softplus, by hand
    return math.log1p(math.exp(x))


def bce(logit, t):  # -[t log s(l) + (1 - t) log(1 - s(l))] = t sp(-l) + (1 - t) sp(l)
    return t * sp(-logit) + (1 - t) * sp(logit)


def mean(xs):
    return sum(xs) / len(xs)


def d_value(loss, lr=LR, lf=LF):
    value, stats = loss.d_loss(lambda x: x, Step(lr, lf))
    return value.item(), stats


def g_value(loss, lr=LR, lf=LF):
    value, _ = loss.g_loss(lambda x: x, Step(lr, lf))
    return value.item()


def test_minimax_and_nonsaturating():
    d_expected = mean([sp(-2.0), sp(1.0)]) + mean([sp(0.5), sp(-3.0)])
    assert d_value(MinimaxLoss())[0] == pytest.approx(d_expected, rel=1e-6)
    assert d_value(BCELoss())[0] == pytest.approx(d_expected, rel=1e-6)
    # minimax G: mean log(1 - s(l_f)) = -mean softplus(l_f)
    assert g_value(MinimaxLoss()) == pytest.approx(-mean([sp(0.5), sp(-3.0)]), rel=1e-6)
    # non-saturating G: -mean log s(l_f) = mean softplus(-l_f)
    assert g_value(BCELoss()) == pytest.approx(mean([sp(-0.5), sp(3.0)]), rel=1e-6)


def test_rsgan():
    d = mean([sp(-(2.0 - 0.5)), sp(-(-1.0 + 3.0))])
    g = mean([sp(-(0.5 - 2.0)), sp(-(-3.0 + 1.0))])
    assert d_value(RSGANLoss())[0] == pytest.approx(d, rel=1e-6)
    assert g_value(RSGANLoss()) == pytest.approx(g, rel=1e-6)


def test_rasgan():
    mr, mf = 0.5, -1.25  # mean(LR), mean(LF)
    d = mean([bce(2.0 - mf, 1), bce(-1.0 - mf, 1)]) + mean([bce(0.5 - mr, 0), bce(-3.0 - mr, 0)])
    g = mean([bce(0.5 - mr, 1), bce(-3.0 - mr, 1)]) + mean([bce(2.0 - mf, 0), bce(-1.0 - mf, 0)])
    assert d_value(RaSGANLoss())[0] == pytest.approx(d, rel=1e-6)
    assert g_value(RaSGANLoss()) == pytest.approx(g, rel=1e-6)


def test_hinge():
    d = mean([max(0, 1 - 2.0), max(0, 1 + 1.0)]) + mean([max(0, 1 + 0.5), max(0, 1 - 3.0)])
    assert d_value(HingeLoss())[0] == pytest.approx(d, rel=1e-6)
    assert g_value(HingeLoss()) == pytest.approx(-mean([0.5, -3.0]), rel=1e-6)
    with pytest.raises(ValueError, match="hinge has no labels"):
        HingeLoss(real_smoothing=0.1)


def test_one_and_two_sided_smoothing():
    one = d_value(BCELoss(real_smoothing=0.1))[0]
    assert one == pytest.approx(mean([bce(2.0, 0.9), bce(-1.0, 0.9)]) + mean([bce(0.5, 0), bce(-3.0, 0)]))
    two = d_value(BCELoss(real_smoothing=0.1, fake_smoothing=0.05))[0]
    assert two == pytest.approx(
        mean([bce(2.0, 0.9), bce(-1.0, 0.9)]) + mean([bce(0.5, 0.05), bce(-3.0, 0.05)])
    )
    # Smoothing is D-only: G's objective is unchanged.
    assert g_value(BCELoss(real_smoothing=0.1)) == pytest.approx(g_value(BCELoss()))


def test_label_flips():
    noise = LabelNoise(flip_prob=0.3)
    torch.manual_seed(0)
    real_t, fake_t = noise.targets(20_000, torch.zeros(1))
    flipped = (real_t == 0).float().mean().item()
    assert 0.28 < flipped < 0.32
    assert torch.equal(real_t + fake_t, torch.ones(20_000))  # a flip swaps, never duplicates
    with pytest.raises(ValueError, match="flip_prob"):
        LabelNoise(flip_prob=0.7)


def test_stats():
    _, stats = d_value(BCELoss())
    assert stats["d_real"].item() == pytest.approx(mean([1 / (1 + math.exp(-2)), 1 / (1 + math.exp(1))]))
    assert stats["d_acc_real"].item() == 0.5  # 2.0 > 0 right, -1.0 wrong
    assert stats["d_acc_fake"].item() == 0.5  # 0.5 wrong, -3.0 right


@pytest.mark.parametrize("loss", [BCELoss(), RSGANLoss(), RaSGANLoss(), HingeLoss(), MinimaxLoss()])
def test_g_gradient_raises_fake_logits(loss):
    """Sign convention: minimising any G objective pushes D(G(z)) towards "real"."""
    lf = LF.clone().requires_grad_(True)
    loss.g_loss(lambda x: x, Step(LR, lf))[0].backward()
    assert (lf.grad < 0).all()


def test_siamese_pairs():
    def pair_d(a, b):  # similarity logit = -|a - b| summed over features, + 1
        return 1 - (a - b).abs().flatten(1).sum(1)

    real = torch.tensor([[0.0], [1.0], [3.0]])
    fake = torch.tensor([[0.5], [1.0], [0.0]])
    same = pair_d(real, real.roll(1, 0))  # pairs (0,3) (1,0) (3,1) -> 1-3, 1-1, 1-2
    diff = pair_d(real, fake)  # 1-0.5, 1-0, 1-3
    assert same.tolist() == [-2.0, 0.0, -1.0]
    loss = SiameseLoss()
    value, stats = loss.d_loss(pair_d, Step(real, fake))
    expected = mean([bce(v, 1) for v in same.tolist()]) + mean([bce(v, 0) for v in diff.tolist()])
    assert value.item() == pytest.approx(expected, rel=1e-6)
    g, _ = loss.g_loss(pair_d, Step(real, fake))
    assert g.item() == pytest.approx(mean([bce(v, 1) for v in diff.tolist()]), rel=1e-6)
    assert SiameseLoss.pairwise and not BCELoss.pairwise


def test_mode_seeking_term_by_hand_within_each_class():
    """MSGAN's 1 / (d_I / d_z + eps), over the pairs of the same label only: by hand on two
    classes of two fakes each; a G that gives one image per class (apart across classes, alike
    within) is penalised as one that collapsed entirely."""
    from ganlab.losses.base import mode_seeking_term

    fake = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0], [5.0, 7.0]])  # (4, 2) "images"
    z = torch.tensor([[0.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 3.0, 3.0]])
    y = torch.tensor([0, 0, 1, 1])
    d_img = mean([1 / 2, 2 / 2])  # mean |x_i - x_j| per pixel, over pairs (0, 1) and (2, 3)
    d_z = mean([3 / 3, 6 / 3])
    assert mode_seeking_term(fake, z, y).item() == pytest.approx(1 / (d_img / d_z + 1e-5), rel=1e-5)
    per_class = torch.tensor([[0.0, 0.0], [0.0, 0.0], [5.0, 5.0], [5.0, 5.0]])
    assert mode_seeking_term(per_class, z, y) > 1e4  # collapsed within the classes
    assert mode_seeking_term(per_class, z) < 10  # over all pairs it would look varied


def test_mode_seeking_in_g_loss_pushes_the_fakes_of_a_class_apart():
    fake = (torch.randn(8, 1, 4, 4) * 0.01).requires_grad_(True)
    z, y = torch.randn(8, 16), torch.tensor([0, 1] * 4)
    plain, _ = BCELoss().g_loss(lambda x, y: x.mean(dim=(1, 2, 3)), Step(None, fake, y, z))
    loss, _ = BCELoss(mode_seeking=1.0).g_loss(lambda x, y: x.mean(dim=(1, 2, 3)), Step(None, fake, y, z))
    assert loss > plain
    (grad,) = torch.autograd.grad(loss - plain, fake)
    from ganlab.losses.base import mode_seeking_term

    with torch.no_grad():
        before, after = mode_seeking_term(fake, z, y), mode_seeking_term(fake - 1e-3 * grad, z, y)
    assert after < before  # a step down the term spreads the class's fakes out
    with pytest.raises(ValueError, match="needs the latents"):
        BCELoss(mode_seeking=1.0).g_loss(lambda x, y: x.mean(dim=(1, 2, 3)), Step(None, fake, y))
    with pytest.raises(ValueError, match="mode_seeking must be >= 0"):
        BCELoss(mode_seeking=-1.0)
