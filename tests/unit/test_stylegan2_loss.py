"""StyleGAN2's loss (ganlab.losses.stylegan2): the path-length term against its formula on a linear
stand-in G, the lazy terms and phases, pl_mean's checkpoint, style mixing, and no host sync."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ganlab.losses.base import bce
from ganlab.losses.step import LazyTerm, Step
from ganlab.losses.stylegan2 import StyleGAN2Loss
from ganlab.models.dcgan import DCGANGenerator
from ganlab.models.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
from tests.host_sync import NoHostSync

B, NZ, NUM_WS, W_DIM, C, H, W = 6, 3, 2, 4, 1, 2, 3


class LinearG(nn.Module):
    """ws = z M repeated num_ws times (B, NUM_WS, W_DIM); img = sum_{n,w} ws[b,n,w] A[n,w,:] as
    (B, C, H, W). So d(sum img * y)/d ws[b,n,w] = sum_p A[n,w,p] y[b,p], known in closed form.
    Records each call's arguments."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.M = nn.Parameter(torch.randn(NZ, W_DIM, generator=g, dtype=torch.float64))
        self.A = nn.Parameter(torch.randn(NUM_WS, W_DIM, C * H * W, generator=g, dtype=torch.float64))
        self.calls: list[dict] = []

    def forward(self, z, c=None, style_mixing_prob=0.0, return_ws=False):
        self.calls.append({"z": z, "c": c, "style_mixing_prob": style_mixing_prob, "return_ws": return_ws})
        ws = (z @ self.M)[:, None, :].repeat(1, NUM_WS, 1)
        img = torch.einsum("bnw,nwp->bp", ws, self.A).reshape(-1, C, H, W)
        return (img, ws) if return_ws else img


class LinearD(nn.Module):
    """logits (B, 1) = x . v; counts its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.v = nn.Parameter(torch.linspace(-1, 1, C * H * W, dtype=torch.float64))
        self.calls = 0

    def forward(self, x, c=None):
        self.calls += 1
        return (x.flatten(1) @ self.v)[:, None]


def fixed_noise(monkeypatch) -> list[torch.Tensor]:
    """torch.randn_like -> a fixed, known tensor (recorded), for the penalty's direction y."""
    drawn = []

    def fake(t):
        y = torch.cos(torch.arange(t.numel(), dtype=t.dtype) * 0.7 + len(drawn)).reshape(t.shape)
        drawn.append(y)
        return y

    monkeypatch.setattr(torch, "randn_like", fake)
    return drawn


def expected_lengths(G: LinearG, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """||J^T y'|| by hand, y' = y / sqrt(H W): per sample, sqrt(mean over the ws of the squared
    norm over w_dim of g[n, w] = sum_p A[n, w, p] y'[p])."""
    A, y = G.A.detach(), y.reshape(z.shape[0], -1) / math.sqrt(H * W)
    out = []
    for b in range(z.shape[0]):
        sq = [sum(float(A[n, w] @ y[b]) ** 2 for w in range(W_DIM)) for n in range(NUM_WS)]
        out.append(math.sqrt(sum(sq) / NUM_WS))
    return torch.tensor(out, dtype=torch.float64)


def g_step(G, z, terms=("pl",), phase="reg", labels=None) -> Step:
    fake = G(z, labels)
    G.calls.clear() if hasattr(G, "calls") else None
    return Step(torch.zeros_like(fake), fake, labels, z, G, frozenset(terms), phase)


# -- the path-length term -------------------------------------------------------------------------
def test_path_length_by_hand(monkeypatch):
    drawn = fixed_noise(monkeypatch)
    G, z = LinearG(), torch.randn(B, NZ, dtype=torch.float64)
    labels = torch.arange(B)
    loss = StyleGAN2Loss(pl_weight=2.0, pl_every=4, pl_decay=0.01, pl_batch_shrink=2, style_mixing_prob=0.5)
    total, stats = loss.g_loss(LinearD(), g_step(G, z, labels=labels))
    # the penalty's batch: B // pl_batch_shrink rows of z and labels, style mixing and ws asked for
    (call,) = G.calls
    assert torch.equal(call["z"], z[:3]) and torch.equal(call["c"], labels[:3])
    assert call["return_ws"] is True and call["style_mixing_prob"] == 0.5
    lengths = expected_lengths(G, z[:3], drawn[0])
    mean = 0.01 * lengths.mean()  # from 0: lerp(0, E[length], 0.01)
    penalty = (lengths - mean).square().mean()
    torch.testing.assert_close(stats["pl_length"].double(), lengths.mean(), rtol=1e-6, atol=0)
    torch.testing.assert_close(loss.pl_mean.double(), mean, rtol=1e-6, atol=0)
    torch.testing.assert_close(stats["pl_mean"].double(), mean, rtol=1e-6, atol=0)
    torch.testing.assert_close(stats["pl_penalty"].double(), penalty, rtol=1e-6, atol=0)
    torch.testing.assert_close(total.double(), penalty * 2.0 * 4, rtol=1e-6, atol=0)  # lazy: x pl_every
    total.backward()
    assert G.A.grad is not None and G.A.grad.abs().sum() > 0  # second order: through the Jacobian
    # the next penalty moves the running mean 1% toward the new batch's mean length
    z2 = torch.randn(B, NZ, dtype=torch.float64)
    loss.g_loss(LinearD(), g_step(G, z2))
    mean2 = mean + 0.01 * (expected_lengths(G, z2[:3], drawn[1]).mean() - mean)
    torch.testing.assert_close(loss.pl_mean.double(), mean2, rtol=1e-6, atol=0)


def test_lazy_terms_and_their_intervals():
    assert StyleGAN2Loss().lazy_terms() == (LazyTerm("r1", "d", 16), LazyTerm("pl", "g", 4))
    assert StyleGAN2Loss(r1_every=8, pl_every=2).lazy_terms() == (
        LazyTerm("r1", "d", 8),
        LazyTerm("pl", "g", 2),
    )
    assert StyleGAN2Loss(r1_gamma=0).lazy_terms() == (LazyTerm("pl", "g", 4),)
    assert StyleGAN2Loss(pl_weight=0).lazy_terms() == (LazyTerm("r1", "d", 16),)
    assert StyleGAN2Loss(r1_gamma=0, pl_weight=0).lazy_terms() == ()
    assert StyleGAN2Loss.separate_lazy is True


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"pl_weight": -1}, "loss.pl_weight"),
        ({"pl_every": 0}, "loss.pl_every"),
        ({"pl_decay": 1.5}, "loss.pl_decay"),
        ({"pl_batch_shrink": 0}, "loss.pl_batch_shrink"),
        ({"style_mixing_prob": 1.1}, "loss.style_mixing_prob"),
        ({"r1_gamma": -1}, "loss.r1_gamma"),
    ],
)
def test_bad_settings_name_their_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        StyleGAN2Loss(**kwargs)


# -- phases: "main" the objective only, "reg" the due terms only ------------------------------------
def test_g_phases():
    G, D, z = LinearG(), LinearD(), torch.randn(B, NZ, dtype=torch.float64)
    loss = StyleGAN2Loss()
    main, stats = loss.g_loss(D, g_step(G, z, phase="main"))
    assert not G.calls and D.calls == 1 and not {"pl_penalty", "pl_length", "pl_mean"} & stats.keys()
    step = g_step(G, z, phase="main")
    torch.testing.assert_close(main, bce(D(step.fake)[:, 0], 1.0))
    D.calls = 0
    reg, stats = loss.g_loss(D, g_step(G, z, phase="reg"))
    assert D.calls == 0 and len(G.calls) == 1  # the penalty alone: G again, no D
    assert set(stats) == {"pl_penalty", "pl_length", "pl_mean"}
    torch.testing.assert_close(reg, stats["pl_penalty"] * 2.0 * 4)
    both, stats = loss.g_loss(D, g_step(G, z, phase="both"))
    assert D.calls == 1 and len(G.calls) == 1 and "pl_penalty" in stats
    _, stats = loss.g_loss(D, g_step(G, z, terms=(), phase="both"))  # not due: no penalty
    assert "pl_penalty" not in stats and len(G.calls) == 0


def test_d_phases():
    D, loss = LinearD(), StyleGAN2Loss(r1_gamma=10.0, r1_every=16)
    real, fake = torch.randn(B, C, H, W, dtype=torch.float64), torch.randn(B, C, H, W, dtype=torch.float64)
    reg, stats = loss.d_loss(D, Step(real, fake, terms=frozenset({"r1"}), phase="reg"))
    assert set(stats) == {"r1"}
    # D linear: grad_x D(x) = v for every sample, so R1 = ||v||^2, scaled by gamma / 2 and r1_every
    r1 = D.v.detach().square().sum()
    torch.testing.assert_close(stats["r1"].double(), r1)
    torch.testing.assert_close(reg.double(), 10.0 / 2 * r1 * 16)
    main, stats = loss.d_loss(D, Step(real, fake, terms=frozenset({"r1"}), phase="main"))
    assert "r1" not in stats and "d_real" in stats
    torch.testing.assert_close(main, bce(D(real)[:, 0], 1.0) + bce(D(fake)[:, 0], 0.0))
    _, stats = loss.d_loss(D, Step(real, fake, terms=frozenset({"r1"}), phase="both"))
    assert "r1" in stats and "d_real" in stats


# -- checkpoint -----------------------------------------------------------------------------------
def test_state_dict_round_trips_pl_mean():
    loss = StyleGAN2Loss()
    assert loss.state_dict() == {"pl_mean": None}
    G, z = LinearG(), torch.randn(B, NZ, dtype=torch.float64)
    loss.g_loss(LinearD(), g_step(G, z))
    state = loss.state_dict()
    saved = state["pl_mean"].clone()
    assert state["pl_mean"].device.type == "cpu" and saved > 0
    loss.g_loss(LinearD(), g_step(G, z))
    assert torch.equal(state["pl_mean"], saved)  # a copy: later updates do not change it
    fresh = StyleGAN2Loss()
    fresh.load_state_dict(state)
    assert torch.equal(fresh.pl_mean, saved)
    held = loss.pl_mean  # an existing tensor is restored in place (a CUDA graph holds it)
    loss.load_state_dict(state)
    assert loss.pl_mean is held and torch.equal(held, saved)
    loss.load_state_dict({"pl_mean": None})
    assert loss.pl_mean is held and held == 0
    empty = StyleGAN2Loss()
    empty.load_state_dict({})
    assert empty.pl_mean is None


# -- generation with the real networks, tiny ---------------------------------------------------------
def tiny_g(c_dim: int = 0) -> StyleGAN2Generator:
    torch.manual_seed(0)
    G = StyleGAN2Generator(
        z_dim=16, c_dim=c_dim, w_dim=16, img_resolution=16, img_channels=3,
        mapping_kwargs={"num_layers": 2}, synthesis_kwargs={"channel_base": 256, "channel_max": 32},
    )  # fmt: skip
    for name, p in G.named_parameters():  # noise strengths 0 (their init): random noise adds nothing
        if name.endswith("noise_strength"):
            p.data.zero_()
    return G


def tiny_d(c_dim: int = 0) -> StyleGAN2Discriminator:
    torch.manual_seed(1)
    return StyleGAN2Discriminator(
        c_dim=c_dim, img_resolution=16, img_channels=3, channel_base=256, channel_max=32,
        epilogue_kwargs={"mbstd_group_size": 2},
    )  # fmt: skip


class Wrapper(nn.Module):
    """DDP's shape: the network as ``.module``, the call forwarded."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


@pytest.mark.parametrize("wrap", [False, True])
def test_generate_mixes_styles(wrap):
    G = tiny_g()
    net = Wrapper(G) if wrap else G
    z = torch.randn(4, 16)
    with torch.no_grad():
        plain = StyleGAN2Loss(style_mixing_prob=0.0)
        assert torch.equal(plain.generate(net, z, None), plain.generate(net, z, None))
        mixing = StyleGAN2Loss(style_mixing_prob=1.0)  # always: later ws from a second, random z
        a, b = mixing.generate(net, z, None), mixing.generate(net, z, None)
    assert a.shape == (4, 3, 16, 16) and not torch.allclose(a, b)


def test_generate_falls_back_for_other_generators():
    torch.manual_seed(0)
    G = DCGANGenerator(image_size=32, channels=3, nz=8, ngf=8).eval()
    z = torch.randn(2, 8)
    with torch.no_grad():
        assert torch.equal(StyleGAN2Loss(style_mixing_prob=0.9).generate(G, z, None), G(z))
    with pytest.raises(ValueError, match="loss.pl_weight"):
        StyleGAN2Loss().g_loss(lambda x: x.flatten(1)[:, :1], Step(G(z), G(z), None, z, G, frozenset({"pl"})))


def test_g_loss_with_path_length_has_no_host_sync():
    """The whole G objective with the penalty due, conditional, on the real tiny networks: no host
    read (a CUDA graph could capture it); pl_mean is created at the first use inside."""
    G, D = tiny_g(c_dim=4), tiny_d(c_dim=4)
    loss = StyleGAN2Loss(style_mixing_prob=0.9)
    z, labels = torch.randn(4, 16), torch.tensor([0, 1, 2, 3])
    with NoHostSync():
        fake = loss.generate(G, z, labels)
        step = Step(torch.zeros_like(fake), fake, labels, z, G, frozenset({"pl"}), "both")
        total, stats = loss.g_loss(D, step)
        total.backward()
    assert {"pl_penalty", "pl_length", "pl_mean"} <= stats.keys()
    assert torch.isfinite(total) and loss.pl_mean > 0
    assert G.mapping.fc0.weight.grad is not None and G.synthesis.b16.conv1.weight.grad is not None
