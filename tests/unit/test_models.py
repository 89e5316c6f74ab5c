"""Unit: network shapes, options and initialisation."""

import pytest
import torch

from ganlab.models import DCGANDiscriminator, DCGANGenerator, SiameseDiscriminator


@pytest.mark.parametrize("size", [32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("kernel_size", [4, 5])
def test_dcgan_shapes(size, channels, kernel_size):
    G = DCGANGenerator(size, channels, nz=20, ngf=8, kernel_size=kernel_size)
    D = DCGANDiscriminator(size, channels, ndf=8, kernel_size=kernel_size)
    x = G(torch.randn(3, 20))
    assert x.shape == (3, channels, size, size)
    assert x.min() >= -1 and x.max() <= 1  # tanh output
    assert G(torch.randn(3, 20, 1, 1)).shape == x.shape  # (B, nz, 1, 1) accepted too
    assert D(x).shape == (3,)


def test_64px_matches_reference_layout():
    """ngf=ndf=64 at 64 px is the pytorch/examples DCGAN: 3.58M G and 2.77M D parameters."""
    G, D = DCGANGenerator(64, 3, 100, 64), DCGANDiscriminator(64, 3, 64)
    assert sum(p.numel() for p in G.parameters()) == 3_576_704
    assert sum(p.numel() for p in D.parameters()) == 2_765_568
    widths = [m.out_channels for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert widths == [512, 256, 128, 64, 3]


def test_linear_first_layer():
    G = DCGANGenerator(32, 3, nz=10, ngf=8, first_layer="linear")
    assert isinstance(G.project[1], torch.nn.Linear)
    assert G(torch.randn(4, 10)).shape == (4, 3, 32, 32)


def test_dropout_in_discriminator_only_acts_in_training():
    D = DCGANDiscriminator(32, 3, ndf=8, dropout=0.5)
    assert any(isinstance(m, torch.nn.Dropout) for m in D.modules())
    x = torch.randn(4, 3, 32, 32)
    D.eval()
    assert torch.equal(D(x), D(x))
    D.train()
    torch.manual_seed(0)
    a = D(x)
    torch.manual_seed(1)
    assert not torch.equal(a, D(x))


def test_normal_002_init():
    G = DCGANGenerator(64, 3, 100, 64)
    w = torch.cat([m.weight.flatten() for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d)])
    assert abs(w.mean().item()) < 1e-3 and abs(w.std().item() - 0.02) < 1e-3
    bn = torch.cat([m.weight for m in G.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert abs(bn.mean().item() - 1) < 5e-3


@pytest.mark.parametrize(("size", "channels"), [(32, 3), (64, 1)])
def test_bad_arguments_are_named(size, channels):
    with pytest.raises(ValueError, match="image_size"):
        DCGANGenerator(48, channels)
    with pytest.raises(ValueError, match="kernel_size"):
        DCGANDiscriminator(size, channels, kernel_size=3)
    with pytest.raises(ValueError, match="channels"):
        DCGANGenerator(size, 2)


def test_siamese_shared_and_separate_branches():
    shared = SiameseDiscriminator(32, 3, ndf=8, shared_weights=True, hidden=16)
    separate = SiameseDiscriminator(32, 3, ndf=8, shared_weights=False, hidden=16)
    n_shared = sum(p.numel() for p in shared.parameters())
    n_sep = sum(p.numel() for p in separate.parameters())
    n_branch = sum(p.numel() for p in shared.branch_a.parameters())
    assert n_sep - n_shared == n_branch
    a, b = torch.randn(5, 3, 32, 32), torch.randn(5, 3, 32, 32)
    shared.eval()
    assert shared(a, b).shape == (5,)
    # Shared branches embed both inputs with the same weights.
    assert torch.equal(shared.branch_a(a), shared.branch_b(a))
    assert separate(a, b).shape == (5,)
