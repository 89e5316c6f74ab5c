"""Stabilisation techniques in short real runs."""

import pytest
import torch

from ganlab.models import DCGANDiscriminator, DCGANGenerator
from tests.conftest import TINY, compose_cfg


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
def test_each_technique_trains_and_changes_what_it_names(overrides, tmp_path, image_dir):
    """Each option runs 5 iterations without NaN, changes the training it names (the weights
    differ from the same seed's run without it: an ignored option would leave them equal), and
    leaves its own trace (G_ema, spectral-norm parametrisations, attention weights, the R1 value,
    the loss class)."""
    from ganlab.train import train

    def run(extra, name):
        cfg = compose_cfg([*TINY, "data=image_folder", f"data.root={image_dir}", *extra], tmp_path / name)
        return train(cfg), torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=False)

    result, ckpt = run(overrides, "with")
    _, plain = run([], "without")
    m, sd, base = result["metrics"], ckpt["state_dict"], plain["state_dict"]
    assert result["iterations"] == 5
    assert all(v == v for v in m.values())  # no NaN in any logged value
    assert set(sd) != set(base) or any(not torch.equal(sd[k], base[k]) for k in base)
    joined = " ".join(overrides)
    if "ema" in joined:
        assert not any(k.startswith("G_ema.") for k in base)
        assert not torch.equal(sd["G_ema.body.0.weight"], sd["G.body.0.weight"])
    if "spectral_norm" in joined:  # torch's parametrisation: the raw weight and the power iteration's u
        for net in ("G", "D"):
            assert any(k.startswith(f"{net}.") and k.endswith("parametrizations.weight.0._u") for k in sd), (
                net
            )
    if "attention_res" in joined:  # SAGAN's blocks: query/key/value projections and the gain gamma
        for net in ("G", "D"):
            assert any(k.startswith(f"{net}.") and k.endswith(".gamma") for k in sd), net
            assert not any(k.startswith(f"{net}.") and k.endswith(".gamma") for k in base), net
    if "loss.r1_gamma=1" in overrides:
        assert "train/r1" in m and m["train/r1"] >= 0  # the penalty ran and was logged
    if "loss=lsgan" in overrides:
        assert ckpt["ganlab"]["config"]["loss"]["_target_"].endswith("LSGANLoss")


def test_all_techniques_train_together(tmp_path, image_dir):
    from ganlab.checkpoint.generator import load_generator
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


def test_ada_adapts_p_logs_it_and_resumes_exactly(tmp_path, image_dir):
    """ADA in a real run: D is too sure of the reals early, so p rises from 0; it is logged as
    train/ada_p, kept in the checkpoint, and a resume ends bit-identical to an uninterrupted run."""
    from tests.conftest import fit, load

    ada = ["model.d_augment=[{_target_: ganlab.augment.ADA, interval: 1, speed_kimg: 0.05, target: 0.0}]",
           "trainer.max_epochs=2", "callbacks.checkpoint.every_n_iterations=3"]  # fmt: skip
    result, _ = fit(ada, tmp_path / "full", image_dir)
    assert result["metrics"]["train/ada_p"] > 0
    full = load(tmp_path / "full" / "checkpoints" / "last.ckpt")
    assert full["state_dict"]["d_augment.0.p"] > 0
    fit(
        [*ada, f"ckpt_path={tmp_path / 'full' / 'checkpoints' / 'it0000003.ckpt'}"],
        tmp_path / "resumed",
        image_dir,
    )
    resumed = load(tmp_path / "resumed" / "checkpoints" / "last.ckpt")
    for k, v in full["state_dict"].items():
        assert torch.equal(v, resumed["state_dict"][k]), k
