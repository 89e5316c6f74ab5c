"""Config: every group option and every experiment composes and instantiates."""

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf

from ganlab.callbacks.checkpoint import GANCheckpoint
from ganlab.callbacks.doctor import Doctor
from ganlab.callbacks.evaluation import FIDEvaluation
from ganlab.callbacks.guard import DivergenceGuard
from ganlab.callbacks.preemption import Preemption
from ganlab.callbacks.progress import GANProgressBar
from ganlab.callbacks.report import RunReport
from ganlab.callbacks.run_length import RunLength
from ganlab.callbacks.run_state import RunState
from ganlab.callbacks.samples import SampleGrid
from ganlab.loggers.wandb import StartLoggers
from ganlab.train import build as train_build
from ganlab.training.module import GANModule
from tests.conftest import CONF, compose_cfg

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def build(cfg):
    """``ganlab.train.build``, what a run instantiates short of fitting (with the CSV logger only:
    a W&B run per composed configuration would only cost time here)."""
    cfg.logger = {"csv": cfg.logger.csv} if "csv" in (cfg.get("logger") or {}) else None
    return train_build(cfg)


def test_the_recipes_page_lists_exactly_the_shipped_experiments():
    """The recipe table of the docs' recipes page (``docs/recipes.md``; README links to it) and
    ``conf/experiment/`` name the same recipes (each one is composed and instantiated below; the
    list comes from conf/)."""
    page = (CONF.parents[1] / "docs" / "recipes.md").read_text()
    table = page.split("| experiment | setup |", 1)[1].split("\n\n", 1)[0]
    listed = sorted(line.split("`")[1] for line in table.splitlines() if line.startswith("| `"))
    assert listed == EXPERIMENTS


def test_betas_typed_as_integers_build_adam(tmp_path):
    """``optimizer.g.betas=[0,0.9]``, SNGAN's betas as a user types them, compose to integers,
    which torch's Adam refuses ("betas must be either both floats or both Tensors")."""
    cfg = compose_cfg(["optimizer.g.betas=[0,0.9]", "optimizer.d.betas=[0,0.9]"], tmp_path)
    _, model, _ = build(cfg)
    for opt in model.configure_optimizers():
        assert opt.defaults["betas"] == (0.0, 0.9)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_instantiates(name, tmp_path):
    cfg = compose_cfg([f"experiment={name}"], tmp_path)
    if OmegaConf.is_missing(cfg.data, "root"):  # an experiment on your own images names no folder
        cfg = compose_cfg([f"experiment={name}", "data.root=/some/images"], tmp_path)
    dm, model, trainer = build(cfg)
    assert cfg.task_name == name
    assert isinstance(model, GANModule)
    opt_g, opt_d = model.configure_optimizers()
    # (lazy terms with optimizer steps of their own: the official rate correction, n / (n + 1))
    assert opt_g.defaults["lr"] == pytest.approx(cfg.optimizer.g.lr * model.optim.lazy["g"])
    assert opt_d.defaults["lr"] == pytest.approx(cfg.optimizer.d.lr * model.optim.lazy["d"])
    assert tuple(opt_g.defaults["betas"]) == pytest.approx(
        tuple(b ** model.optim.lazy["g"] for b in cfg.optimizer.g.betas)
    )
    ours = [type(c) for c in trainer.callbacks if type(c).__module__.startswith("ganlab.")]
    assert ours[:2] == [DivergenceGuard, RunLength]  # the guard first: it looks before anything saves
    assert set(ours) == {DivergenceGuard, RunLength, GANCheckpoint, SampleGrid, FIDEvaluation, GANProgressBar,
                         Preemption, RunReport, RunState, StartLoggers, Doctor}  # fmt: skip
    y = (
        model.fixed_y[:2] if model.fixed_y is not None else None
    )  # conditional experiments: classes from the data
    assert model.generate(model.fixed_z[:2], y).shape == (
        2,
        cfg.data.channels,
        cfg.data.image_size,
        cfg.data.image_size,
    )
    assert trainer.max_epochs == cfg.trainer.max_epochs


def test_experiment_specifics(tmp_path):
    c = compose_cfg(["experiment=faces64_k5_dropout_smooth"], tmp_path)
    assert c.model.discriminator.kernel_size == 5 and c.optimizer.d.lr * 5 == pytest.approx(c.optimizer.g.lr)
    _, model, _ = build(c)
    assert model.loss.noise.real_smoothing == 0.1
    c = compose_cfg(["experiment=siamese_cifar_catdog32"], tmp_path)
    assert list(c.data.classes) == ["cat", "dog"] and c.data.image_size == 32 and c.data.batch_size == 64
    c = compose_cfg(["experiment=dcgan64_augment_dalt"], tmp_path)
    assert c.model.d_every == 2 and c.data.random_crop and c.data.hflip


def test_issue_example_composes(tmp_path):
    """`python -m ganlab.train model=dcgan data=celeba64 trainer.devices=8`"""
    cfg = compose_cfg(["model=dcgan", "data=celeba64", "trainer.devices=8"], tmp_path)
    assert cfg.trainer.devices == 8
    dm, model, _ = build(cfg)
    assert dm.center_crop == 140 and model.G.image_size == 64


GROUPS = {
    g: sorted(p.stem for p in (CONF / g).glob("*.yaml"))
    for g in ("data", "model", "loss", "trainer", "logger")
}


@pytest.mark.parametrize(("group", "option"), [(g, o) for g, opts in GROUPS.items() for o in opts])
def test_every_group_option_composes(group, option, tmp_path):
    overrides = [f"{group}={option}"]
    if group == "model" and option == "siamese" or group == "loss" and option == "siamese":
        overrides = ["model=siamese", "loss=siamese"]
    if group == "loss" and option == "stylegan2":  # its path length and mixing need a style-based G
        overrides = ["model=stylegan2", "loss=stylegan2"]
    if group == "data" and option == "image_folder":
        overrides.append("data.root=/some/images")
    cfg = compose_cfg(overrides, tmp_path)
    if group == "logger":  # each logger the option names, instantiated (build() keeps CSV only)
        made = [type(instantiate(node)).__name__ for node in (cfg.logger or {}).values()]
        csv, wb = "ResumableCSVLogger", "GANWandbLogger"
        wanted = {"none": [], "default": [csv, wb], "csv": [csv], "wandb": [wb],
                  "tensorboard": ["TensorBoardLogger"]}[option]  # fmt: skip
        assert made == wanted
        return
    dm, model, trainer = build(cfg)
    if group == "trainer":  # every preset builds the trainer it names, DDP ones included
        from ganlab.training.ddp import GANDDPStrategy

        ddp = option in ("ddp", "ddp_cpu")
        assert isinstance(trainer.strategy, GANDDPStrategy) == ddp and trainer.num_devices == (
            2 if ddp else 1
        )
        assert trainer.max_epochs == cfg.trainer.max_epochs == 200
        if option in ("cpu", "ddp_cpu"):
            assert type(trainer.accelerator).__name__ == "CPUAccelerator"
    elif group == "data":
        assert f"{type(dm).__module__}.{type(dm).__name__}" == cfg.data._target_
    elif group == "loss":
        assert f"{type(model.loss).__module__}.{type(model.loss).__name__}" == cfg.loss._target_
    elif group == "model":
        # (the class its _target_ names: a package may re-export it, ganlab.models.stylegan2)
        assert get_class(cfg.model.generator._target_) is type(model.G)
        assert get_class(cfg.model.discriminator._target_) is type(model.D)


def test_paths_follow_env(tmp_path, monkeypatch):
    monkeypatch.setenv("GANLAB_DATA_DIR", "/datasets")
    cfg = compose_cfg([], tmp_path)
    assert cfg.data.root == "/datasets/emoji-google-64"
    monkeypatch.delenv("GANLAB_DATA_DIR")
    assert Path(compose_cfg([], tmp_path).data.root).parent.name == "data"


def test_unknown_override_is_refused(tmp_path):
    with pytest.raises(ConfigCompositionException, match="Could not override 'model.no_such_key'"):
        compose_cfg(["model.no_such_key=1"], tmp_path)
    with pytest.raises(ConfigCompositionException, match="Could not find 'loss/no_such_loss'"):
        compose_cfg(["loss=no_such_loss"], tmp_path)


def test_loss_model_mismatch_is_explained(tmp_path):
    cfg = compose_cfg(["loss=siamese"], tmp_path)
    with pytest.raises(Exception, match=r"needs a pair discriminator \(model=siamese\)"):
        build(cfg)
