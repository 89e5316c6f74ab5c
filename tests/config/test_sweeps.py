"""Sweeps: Optuna hyperparameter search (4 real trials) and the SLURM launcher config."""

import subprocess
import sys

import yaml

from tests.conftest import TINY, compose_cfg


def test_optuna_search_runs_four_trials(tmp_path, image_dir):
    args = [o for o in TINY if o != "logger=csv"] + [
        "hparams_search=fid_optuna",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.sampler.n_startup_trials=2",
        "data=image_folder",
        f"data.root={image_dir}",
        "logger=csv",
        "callbacks.evaluation.feature=tiny",
        "callbacks.evaluation.n=16",
        "callbacks.evaluation.kid_subset_size=8",
        f"callbacks.evaluation.cache_dir={tmp_path / 'cache'}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    r = subprocess.run(
        [sys.executable, "-m", "ganlab.train", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir()) == ["0", "1", "2", "3"]
    result = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert set(result["best_params"]) == {"loss", "optimizer.g.lr", "optimizer.d.lr"}
    assert result["best_value"] > 0  # an FID (tiny network), minimised
    assert (tmp_path / "ganlab_optuna.db").is_file()  # persistent study storage


def test_optuna_metric_name_follows_n(tmp_path):
    cfg = compose_cfg(["hparams_search=fid_optuna"], tmp_path)
    assert cfg.optimized_metric == "val/fid_10k" and cfg.callbacks.evaluation.at_end


def test_slurm_launcher_composes(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from tests.conftest import CONF

    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = compose("train", overrides=["hydra/launcher=slurm", "trainer=ddp"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.gpus_per_node == launcher.tasks_per_node == 8 and launcher.timeout_min == 2880
