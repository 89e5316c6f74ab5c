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


def _hierarchical(kind: str, num_classes: int, constant_input: bool = False):
    from ganlab.models.resnet import ResNetGenerator

    kw = dict(nz=32, ngf=8, num_classes=num_classes, hierarchical_z=True, constant_input=constant_input)
    if kind == "resnet":
        return ResNetGenerator(32, 3, **kw)
    return DCGANGenerator(32, 3, first_layer="linear" if kind == "dcgan_linear" else "conv", **kw)


@pytest.mark.parametrize("constant_input", [False, True], ids=["z_input", "constant_input"])
@pytest.mark.parametrize("num_classes", [0, 3], ids=["unconditional", "conditional"])
@pytest.mark.parametrize("kind", ["dcgan", "dcgan_linear", "resnet"])
def test_hierarchical_z_reaches_every_block(kind, num_classes, constant_input):
    """BigGAN's hierarchical latent: each chunk of z sets its own block's BatchNorms, so changing
    any one chunk alone changes the image (once the maps, zero at initialisation, have learned;
    with a constant input from initialisation on, or z would reach nothing)."""
    from ganlab.models.conditional import LatentBatchNorm

    torch.manual_seed(0)
    G = _hierarchical(kind, num_classes, constant_input)
    norms = [m for m in G.modules() if isinstance(m, LatentBatchNorm)]
    assert len(norms) == (6 if kind == "resnet" else 3)  # 32 px: 3 blocks x 2 BNs; DCGAN's 3 BNs
    # the input's chunk and 3 blocks', or the 3 blocks' only
    assert len(G.latent.sizes) == (3 if constant_input else 4) and sum(G.latent.sizes) == 32
    assert (G.latent.constant is not None) == constant_input
    if not constant_input:
        for m in norms:  # as after some training: the maps away from zero
            torch.nn.init.normal_(m.gain.weight, 0, 0.3)
            torch.nn.init.normal_(m.bias.weight, 0, 0.3)
    G.eval()
    z = torch.randn(4, 32)
    y = torch.arange(4) % 3 if num_classes else None
    out = G(z, y)
    assert out.shape == (4, 3, 32, 32)
    start = 0
    for size in G.latent.sizes:
        z2 = z.clone()
        z2[:, start : start + size] += 1.0
        start += size
        assert not torch.allclose(out, G(z2, y), atol=1e-5), (
            f"z[:, {start - size}:{start}] does not reach the image"
        )


def test_a_constant_input_needs_the_hierarchical_latent():
    with pytest.raises(ValueError, match="needs model.generator.hierarchical_z=true"):
        DCGANGenerator(32, 3, nz=32, ngf=8, constant_input=True)


def test_without_hierarchical_z_the_networks_are_unchanged():
    """Today's checkpoints load: with the option off G has exactly the parameters it had before
    the option existed (``tests/smoke/test_release_checkpoint.py`` loads a 0.1 checkpoint)."""
    from ganlab.models.resnet import ResNetGenerator

    for G in (DCGANGenerator(32, 3, nz=32, ngf=8, num_classes=3), ResNetGenerator(32, 3, nz=32, ngf=8)):
        assert G.latent is None and not any(k.startswith("latent.") for k in G.state_dict())
