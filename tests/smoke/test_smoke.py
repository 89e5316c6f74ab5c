"""Smoke: short real ``Trainer.fit`` runs, in-process and through the CLI."""

import csv
import json
from pathlib import Path

import pytest
import torch

from tests.conftest import CONF, ROOT, TINY, TINY_STYLEGAN2, fit, load, run_cli


@pytest.mark.parametrize("loss", sorted(p.stem for p in (CONF / "loss").glob("*.yaml")))
def test_fit_each_loss(loss, tmp_path, image_dir):
    extra = {"siamese": ["model=siamese", "model.discriminator.ndf=8", "model.discriminator.hidden=16"]}
    base = TINY_STYLEGAN2 if loss == "stylegan2" else TINY  # its path length and mixing need a style G
    result, _ = fit([f"loss={loss}", *extra.get(loss, [])], tmp_path, image_dir, base=base)
    m = result["metrics"]
    assert result["iterations"] == 5  # 40 images / batch 8, one epoch
    for k in ("train/loss_d", "train/loss_g", "train/d_real", "train/d_fake", "train/d_acc"):
        assert k in m and m[k] == m[k], k  # present and not NaN
    assert 0 <= m["train/d_real"] <= 1 and 0 <= m["train/d_acc"] <= 1
    assert m["train/images_seen"] == 40
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / "samples" / "latest.png").is_file()


def test_schedule_counts(tmp_path, image_dir):
    """d_every=2, d_steps_per_g=2 at batch 4: an iteration takes 2 minibatches (8 images), so 5
    iterations; D phases at iterations 0, 2, 4 with 2 updates each."""
    fit(
        [
            "model.d_every=2",
            "model.d_steps_per_g=2",
            "data.batch_size=4",
            "callbacks.checkpoint.every_n_iterations=0",
        ],
        tmp_path,
        image_dir,
    )
    ck = load(tmp_path / "checkpoints" / "last.ckpt")
    counters = ck["ganlab"]["counters"]
    assert counters == {"iterations": 5, "images_seen": 40, "d_updates": 6, "g_updates": 5, "d_skipped": 0}
    assert ck["global_step"] == 11  # Lightning counts optimizer steps, hence ganlab's own counters


def test_k_d_steps_draw_fresh_reals_and_latents(tmp_path, image_dir, monkeypatch):
    """Algorithm 1 (Goodfellow et al. 2014): each of the k D updates of an iteration gets its own
    real minibatch and its own z; the real images of one epoch are each shown to D once."""
    from ganlab.losses import BCELoss

    seen = []
    original = BCELoss.d_loss

    def recording(self, D, step):
        seen.append((step.real.clone(), step.fake.clone()))
        return original(self, D, step)

    monkeypatch.setattr(BCELoss, "d_loss", recording)
    result, _ = fit(["model.d_steps_per_g=3", "data.batch_size=4"], tmp_path, image_dir)
    assert result["iterations"] == 3  # 40 images // (3 x 4)
    assert len(seen) == 9 and all(r.shape[0] == 4 and f.shape[0] == 4 for r, f in seen)
    reals = torch.cat([r.flatten(1) for r, _ in seen])
    assert torch.unique(reals, dim=0).shape[0] == 36  # 36 distinct real images, none reused
    for i in range(3):
        fakes = [seen[3 * i + j][1] for j in range(3)]
        assert not torch.allclose(fakes[0], fakes[1]) and not torch.allclose(fakes[1], fakes[2])


def test_g_every_and_adaptive_skip(tmp_path, image_dir):
    fit(["model.g_every=2", "model.d_skip_accuracy=-1"], tmp_path, image_dir)
    c = load(tmp_path / "checkpoints" / "last.ckpt")["ganlab"]["counters"]
    assert c["g_updates"] == 2  # iterations 1 and 3
    assert c["d_updates"] == 0 and c["d_skipped"] == 5  # accuracy is always above -1


def test_ttur_uniform_prior_and_linear_generator(tmp_path, image_dir):
    fit(
        [
            "optimizer.d.lr=1e-4",
            "optimizer.g.lr=4e-4",
            "model.latent=uniform",
            "model.generator.first_layer=linear",
        ],
        tmp_path,
        image_dir,
    )
    ck = load(tmp_path / "checkpoints" / "last.ckpt")
    lrs = [s["param_groups"][0]["lr"] for s in ck["optimizer_states"]]
    assert lrs == [4e-4, 1e-4]  # [G, D]
    z = ck["state_dict"]["fixed_z"]
    assert z.shape == (16, 16) and z.abs().max() <= 1


def test_nan_loss_stops_with_advice(tmp_path, image_dir):
    with pytest.raises(
        FloatingPointError, match=r"diverged .*NaN/inf.*lower optimizer.g.lr / optimizer.d.lr"
    ):
        fit(["optimizer.d.lr=1e30", "optimizer.g.lr=1e30", "train.check_every=1"], tmp_path, image_dir)


def test_bf16_mixed_runs_in_bf16(tmp_path, image_dir, monkeypatch):
    """bf16-mixed trains 5 finite iterations, D's convolutions really run in bfloat16 under it
    (seen from inside the step), and the weights end where the fp32 run's do not."""
    from ganlab.models.dcgan import DCGANDiscriminator

    seen = []
    forward = DCGANDiscriminator.forward

    def spy(self, x, *a, **k):
        out = forward(self, x, *a, **k)
        seen.append(out.dtype)
        return out

    monkeypatch.setattr(DCGANDiscriminator, "forward", spy)
    result, _ = fit(["trainer.precision=bf16-mixed"], tmp_path / "bf16", image_dir)
    assert result["iterations"] == 5 and all(v == v for v in result["metrics"].values())
    assert seen and set(seen) == {torch.bfloat16}
    fit([], tmp_path / "fp32", image_dir)
    a, b = (load(tmp_path / d / "checkpoints" / "last.ckpt")["state_dict"] for d in ("bf16", "fp32"))
    assert any(not torch.equal(a[k], b[k]) for k in a if k.startswith("D."))


def weights(path):
    sd = load(path)["state_dict"]
    return {k: v for k, v in sd.items()}


@pytest.mark.parametrize(
    ("resume_from", "data_mode"),
    [
        ("it0000003.ckpt", []),
        ("it0000005.ckpt", []),
        ("it0000003.ckpt", ["data.cache=true", "data.device_resident=true"]),
    ],
    ids=["mid-epoch", "epoch-end", "mid-epoch-device-resident"],
)
def test_resume_is_exact(resume_from, data_mode, tmp_path, image_dir):
    """An interrupted run resumed from a checkpoint ends with the same weights, optimizer state,
    counters and fixed noise as an uninterrupted run of equal length. Augmentation (random crop,
    flip) and label flips are on, so every RNG stream is exercised."""
    common = [
        "trainer.max_epochs=2",
        "callbacks.checkpoint.every_n_iterations=3",
        "data.load_size=36",
        "data.random_crop=true",
        "data.hflip=true",
        "loss.flip_prob=0.1",
        f"data.cache_dir={tmp_path / 'cache'}",
        *data_mode,
    ]
    full_dir, resumed_dir = tmp_path / "full", tmp_path / "resumed"
    fit(common, full_dir, tmp_path.parent / image_dir)
    ckpts = sorted(p.name for p in (full_dir / "checkpoints").glob("it*.ckpt"))
    assert ckpts == ["it0000003.ckpt", "it0000005.ckpt", "it0000006.ckpt", "it0000009.ckpt", "it0000010.ckpt"]
    fit([*common, f"ckpt_path={full_dir / 'checkpoints' / resume_from}"], resumed_dir, image_dir)
    a, b = load(full_dir / "checkpoints" / "last.ckpt"), load(resumed_dir / "checkpoints" / "last.ckpt")
    assert a["ganlab"]["counters"] == b["ganlab"]["counters"] and a["ganlab"]["counters"]["iterations"] == 10
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    for sa, sb in zip(a["optimizer_states"], b["optimizer_states"]):
        for pa, pb in zip(sa["state"].values(), sb["state"].values()):
            assert torch.equal(pa["exp_avg"], pb["exp_avg"])


def test_missing_checkpoint_is_named(tmp_path, image_dir):
    from ganlab.utils.errors import CheckpointError

    with pytest.raises(CheckpointError, match="ckpt_path=.*nope.ckpt: no such file"):
        fit([f"ckpt_path={tmp_path / 'nope.ckpt'}"], tmp_path, image_dir)


# --- through the command line, as a user runs it --------------------------------------------


def only_run_dir(base: Path) -> Path:
    runs = list((base / "outputs" / "train" / "runs").iterdir())
    assert len(runs) == 1
    return runs[0]


def test_cli_train_writes_everything(tmp_path, image_dir):
    r = run_cli([*TINY, "logger=default", "data=image_folder", f"data.root={image_dir}"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    run = only_run_dir(tmp_path)
    assert (run / "checkpoints" / "last.ckpt").is_file() and (
        run / "checkpoints" / "it0000004.ckpt"
    ).is_file()
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "it0000002.png",
        "it0000004.png",
        "it0000005.png",
        "latest.png",
    ]
    with open(run / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"train/loss_d", "train/loss_g", "train/d_real", "train/d_fake", "train/d_acc_real"} <= set(
        rows[0]
    )
    assert list((run / "wandb").glob("offline-run-*")), "W&B offline run directory"
    assert (run / ".hydra" / "config.yaml").is_file()
    ck = load(run / "checkpoints" / "last.ckpt")
    assert ck["ganlab"]["config"]["data"]["root"] == str(image_dir)  # provenance: the resolved config


@pytest.mark.parametrize("mode", ["default", "fdr"])
def test_debug_configs_run_quickly_and_print_the_config(mode, tmp_path, image_dir):
    small = ["data.batch_size=8", "data.image_size=32", "model.generator.ngf=8", "model.discriminator.ndf=8"]
    r = run_cli([f"debug={mode}", "data=image_folder", f"data.root={image_dir}", *small], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout + r.stderr
    (run,) = (tmp_path / "outputs" / "debug" / "runs").iterdir()  # task_name: debug
    assert "(configuration: .hydra/config.yaml)" in out and "device: cpu" in out  # the first screen
    log = (run / "train.log").read_text()  # the resolved configuration at the top of the run's log
    assert "configuration:" in log and "_target_: ganlab.training.build.gan_module" in log
    assert (
        "limit_train_batches: 5" in log
        and "limit_train_batches: 5" in (run / ".hydra" / "config.yaml").read_text()
    )
    if mode == "default":
        assert (run / "checkpoints" / "last.ckpt").is_file() and not (run / "csv").exists()
        assert load(run / "checkpoints" / "last.ckpt")["ganlab"]["counters"]["iterations"] == 5


def test_cli_missing_dataset(tmp_path):
    r = run_cli([*TINY, f"data.root={tmp_path / 'no_such_dir'}"], tmp_path)
    assert r.returncode != 0
    assert (
        "dataset directory not found" in r.stderr and "no_such_dir" in r.stderr and "ganlab-fetch" in r.stderr
    )


def test_cli_bad_override(tmp_path):
    r = run_cli(["trainer.max_epoch=1"], tmp_path)
    assert r.returncode != 0 and "Could not override 'trainer.max_epoch'" in r.stderr
    r = run_cli(["data=celeba"], tmp_path)
    assert r.returncode != 0 and "Could not find 'data/celeba'" in r.stderr and "celeba64" in r.stderr


def test_cli_multirun_two_jobs(tmp_path, image_dir):
    sweep = tmp_path / "sweep"
    r = run_cli(
        [
            "-m",
            "loss=bce,rasgan",
            "optimizer.d.lr=1e-4",
            *TINY,
            "logger=default",
            "data=image_folder",
            f"data.root={image_dir}",
            f"hydra.sweep.dir={sweep}",
        ],
        tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    for job in "01":
        assert (sweep / job / "checkpoints" / "last.ckpt").is_file()
    targets = [
        load(sweep / j / "checkpoints" / "last.ckpt")["ganlab"]["config"]["loss"]["_target_"] for j in "01"
    ]
    assert targets == ["ganlab.losses.bce.BCELoss", "ganlab.losses.rasgan.RaSGANLoss"]
    runs = [list((sweep / j / "wandb").glob("offline-run-*")) for j in "01"]
    assert all(len(r) == 1 for r in runs) and runs[0][0].name != runs[1][0].name  # one W&B run per job


def wandb_records(run_dir: Path, kind: str) -> list:
    """The records of one type (``run``, ``config``, ``summary``, ``alert``...) in a run's W&B files."""
    from wandb.proto import wandb_internal_pb2 as pb

    from ganlab.loggers.wandb import _log_records

    found = []
    for path in sorted(run_dir.glob("wandb/*-run-*/run-*.wandb")):
        for raw in _log_records(path.read_bytes()):
            record = pb.Record()
            record.ParseFromString(raw)
            if record.WhichOneof("record_type") == kind:
                found.append(getattr(record, kind))
    return found


def test_a_sweep_is_one_wandb_group_named_by_its_swept_values(tmp_path, image_dir):
    """`-m loss=bce,rasgan` with a shared override: both runs in one group with one job type, each
    named by its swept value alone, tagged with the swept key, the swept values as config columns
    and the final and best FID in the run summary (read back from W&B's offline files)."""
    sweep = tmp_path / "sweep"
    evaluation = ["callbacks.evaluation.feature=tiny", "callbacks.evaluation.at_end=true",
                  "callbacks.evaluation.n=16", "callbacks.evaluation.kid_subset_size=8",
                  f"callbacks.evaluation.cache_dir={tmp_path / 'fid'}"]  # fmt: skip
    r = run_cli(["-m", "loss=bce,rasgan", "optimizer.d.lr=1e-4", *TINY, "logger=wandb", "data=image_folder",
                 f"data.root={image_dir}", *evaluation, f"hydra.sweep.dir={sweep}"],
                tmp_path, env={"WANDB_MODE": "offline"})  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    runs = [wandb_records(sweep / j, "run")[0] for j in "01"]
    assert {x.run_group for x in runs} == {f"train-{sweep.name}"} and {x.job_type for x in runs} == {"train"}
    assert [x.display_name for x in runs] == ["loss=bce", "loss=rasgan"]
    assert [list(x.tags) for x in runs] == [["sweep", "loss"], ["sweep", "loss"]]
    for j, value in zip("01", ("bce", "rasgan")):
        config = {}
        for rec in wandb_records(sweep / j, "config"):
            config.update({u.key: json.loads(u.value_json) for u in rec.update})
        assert config["sweep"] == {"loss": value}
        summary = {}
        for rec in wandb_records(sweep / j, "summary"):
            summary.update({u.key: json.loads(u.value_json) for u in rec.update})
        assert 0 < summary["val/fid_16_best"] <= summary["val/fid_16_final"]


def test_cli_ddp_two_cpu_processes(tmp_path, image_dir):
    """DDP with 2 gloo processes: training, and FID evaluation every iteration with all ranks
    generating and rank 0 computing (a rank left waiting would hang this test)."""
    evaluation = [
        "callbacks.evaluation.feature=tiny",
        "callbacks.evaluation.every_n_iterations=1",
        "callbacks.evaluation.n=10",
        "callbacks.evaluation.kid_subset_size=5",
        f"callbacks.evaluation.cache_dir={tmp_path / 'cache'}",
    ]
    r = run_cli(
        [
            *TINY,
            "trainer=ddp_cpu",
            "trainer.devices=2",
            "data=image_folder",
            f"data.root={image_dir}",
            "callbacks.checkpoint.every_n_iterations=0",
            *evaluation,
        ],
        tmp_path,
        timeout=240,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    run = only_run_dir(tmp_path)
    ck = load(run / "checkpoints" / "last.ckpt")
    # 40 images over 2 ranks of batch 8: 2 iterations of 16 images (the remainder is dropped).
    assert ck["ganlab"]["counters"]["iterations"] == 2 and ck["ganlab"]["counters"]["images_seen"] == 32
    assert "x 2, precision 32-true, strategy GANDDP" in r.stdout  # the first screen names the strategy
    results = [json.loads(p.read_text()) for p in sorted((run / "eval").glob("it*.json"))]
    assert [x["iteration"] for x in results] == [1, 2]
    assert all(x["n_fake"] == 10 and x["n_real"] == 40 for x in results)  # 5 per rank, gathered
    assert (run / "checkpoints" / "best.ckpt").is_file()


def test_make_train_default_dataset_two_iterations(tmp_path):
    """README's first command trains on the real embedded emoji set; here for 2 iterations."""
    r = run_cli(
        [
            "trainer=cpu",
            "trainer.max_steps=4",
            "logger=csv",
            "data.batch_size=16",
            "callbacks.samples.every_n_iterations=2",
            f"paths.data_dir={ROOT / 'data'}",
            "trainer.enable_progress_bar=false",
        ],
        tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    run = only_run_dir(tmp_path)
    assert (run / "samples" / "it0000002.png").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    assert (
        json.loads(json.dumps(load(run / "checkpoints" / "last.ckpt")["ganlab"]["counters"]))["iterations"]
        == 2
    )


def test_checkpoint_write_is_atomic_and_a_full_disk_is_one_message(tmp_path):
    """A save that fails half-way (here a real ENOSPC: the temporary file is /dev/full) leaves the
    previous checkpoint whole and no stray file, and ends in one user error naming the file,
    the reason and the setting to change."""
    import os

    from ganlab.checkpoint.io import AtomicCheckpointIO
    from ganlab.utils.errors import CheckpointError

    io = AtomicCheckpointIO()
    target = tmp_path / "ckpts" / "last.ckpt"
    io.save_checkpoint({"v": torch.arange(1000)}, target)
    (target.parent / f".last.ckpt.tmp{os.getpid()}").symlink_to("/dev/full")  # writes fail: disk full
    with pytest.raises(CheckpointError) as err:
        io.save_checkpoint({"v": torch.zeros(1000)}, target)
    message = str(err.value)
    assert f"could not write the checkpoint '{target}'" in message
    assert "(callbacks.checkpoint.dirpath)" in message
    assert "the previous checkpoint is intact" in message and "\n" not in message
    assert torch.equal(torch.load(target, weights_only=True)["v"], torch.arange(1000))
    assert [p.name for p in target.parent.iterdir()] == ["last.ckpt"]


def test_python_api_fits_and_loads_the_generator(tmp_path, image_dir):
    """ganlab.api composes without a Hydra app (no "HydraConfig was not set") and trains."""
    from ganlab import api

    result = api.fit([*TINY, "data=image_folder", f"data.root={image_dir}"], output_dir=tmp_path / "run")
    assert result["iterations"] == 5 and Path(result["output_dir"]) == tmp_path / "run"
    gen = api.load_generator(tmp_path / "run" / "checkpoints" / "last.ckpt")
    images = gen(gen.sample_z(4))
    assert images.shape == (4, 3, 32, 32) and images.abs().max() <= 1


def test_run_length_and_cadences_in_kimg(tmp_path, image_dir):
    """train.max_kimg stops the run; samples and checkpoints can run every N kimg. Batch 8: an
    iteration shows D 8 images, so 0.024 kimg = 3 iterations and max_kimg 0.056 = 7 iterations."""
    result, _ = fit(
        [
            "trainer.max_epochs=10",
            "train.max_kimg=0.056",
            "callbacks.samples.every_n_iterations=0",
            "callbacks.samples.every_kimg=0.024",
            "callbacks.checkpoint.every_n_iterations=0",
            "callbacks.checkpoint.every_kimg=0.024",
        ],
        tmp_path,
        image_dir,
    )
    assert result["iterations"] == 7
    assert sorted(p.name for p in (tmp_path / "samples").glob("it*.png")) == [
        "it0000003.png",
        "it0000005.png",
        "it0000006.png",
        "it0000007.png",
    ]  # fmt: skip  (every 3; 5 = end of the first epoch; 7 = the end)
    ckpts = sorted(p.name for p in (tmp_path / "checkpoints").glob("it*.ckpt"))
    assert ckpts == ["it0000003.ckpt", "it0000005.ckpt", "it0000006.ckpt", "it0000007.ckpt"]


def test_max_iterations(tmp_path, image_dir, caplog):
    result, _ = fit(["trainer.max_epochs=10", "train.max_iterations=4"], tmp_path / "a", image_dir)
    assert result["iterations"] == 4
    assert "trainer.max_epochs" not in caplog.text
    # Lightning's epoch limit comes first (5 iterations per epoch): the run says so when it starts
    result, _ = fit(["trainer.max_epochs=1", "train.max_iterations=8"], tmp_path / "b", image_dir)
    assert result["iterations"] == 5
    said = "trainer.max_epochs=1 ends this run at iteration 5 (5 per epoch), before train.max_iterations"
    assert said in caplog.text


class CountsUpdates(__import__("lightning").Callback):
    """Listens to a per-update hook: ganlab then routes its updates through Lightning's wrappers."""

    def __init__(self) -> None:
        self.calls = 0

    def on_before_optimizer_step(self, trainer, module, optimizer) -> None:
        self.calls += 1


def test_updates_go_through_lightning_when_a_callback_listens(tmp_path, image_dir, monkeypatch):
    """Without listeners ganlab calls backward and the optimizers directly (less per-iteration
    overhead) and keeps Lightning's step count; with one, its hooks fire at every update, and
    both routes train to the same weights."""
    import ganlab.train

    fit(["callbacks.checkpoint.every_n_iterations=0"], tmp_path / "direct", image_dir)
    counter = CountsUpdates()
    build = ganlab.train.build
    monkeypatch.setattr(ganlab.train, "build", lambda cfg, extra_callbacks=None, datamodule=None: build(
        cfg, [counter], datamodule))  # fmt: skip
    fit(["callbacks.checkpoint.every_n_iterations=0"], tmp_path / "hooked", image_dir)
    assert counter.calls == 10  # 5 iterations x (D + G)
    a, b = (load(tmp_path / d / "checkpoints" / "last.ckpt") for d in ("direct", "hooked"))
    assert a["global_step"] == b["global_step"] == 10
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k


@pytest.mark.parametrize(("extra", "iterations"), [([], 20), (["model.d_every=2"], 27)])
def test_progress_total_follows_max_steps_in_optimizer_steps(extra, iterations, tmp_path, image_dir, capsys):
    """trainer.max_steps counts optimizer steps (two per iteration with the defaults; 1.5 with D
    every other iteration): the run, its progress line and ETA end at the same iteration."""
    result, _ = fit(["trainer.max_steps=40", "trainer.max_epochs=-1", "trainer.enable_progress_bar=true",
                     "trainer.log_every_n_steps=5", *extra], tmp_path, image_dir)  # fmt: skip
    assert result["iterations"] == iterations
    shown = capsys.readouterr().out
    assert f"it {iterations}/{iterations} " in shown and f"/{iterations + 1} " not in shown
