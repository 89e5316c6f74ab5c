"""The docs' measured figures, rendered from the committed result files; nothing is typed by hand.

    python docs/render.py           # writes docs/generated/*.md and README.md's rendered block
    python docs/render.py --check   # writes nothing; exits 1 naming every stale file (tests/docs)

Each fragment comes from one source: a JSON file of ``experiments/`` (through the table function
of the script that wrote it, where that script has one: ``doctor.py``, ``compare_techniques.py``,
``recipe_candidates.py``), the doctor's thresholds in ``ganlab/conf/callbacks/default.yaml``, the
layers of ``tests/unit/test_hygiene.py`` or the parameter counts the tests assert. The pages
include the fragments with ``--8<--`` (pymdownx.snippets); README.md, which GitHub shows as it
is, holds its one table between the ``BEGIN rendered`` / ``END rendered`` comments.
The candidate tables of the CPU recipes are ``recipe_candidates.py``'s own markdown
(``experiments/<recipe>_candidates.md``), included as they are; ``--check`` also checks those
files (and the other scripts' ``.md``) against their JSON.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXP = ROOT / "experiments"
GEN = ROOT / "docs" / "generated"
README = ROOT / "README.md"
BEGIN, END = "<!-- BEGIN rendered: {} (python docs/render.py) -->", "<!-- END rendered: {} -->"


def script(name: str):
    """An experiment script, for its table function (it imports ``experiments/common.py``)."""
    sys.path.insert(0, str(EXP))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(EXP))


def load(name: str) -> dict:
    return json.loads((EXP / name).read_text())


def table(head: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def minutes(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


def source(*files: str) -> str:
    return (
        "<small>Rendered by `python docs/render.py` from "
        + ", ".join(f"`{f}`" for f in files)
        + ".</small>\n"
    )


# -- the CPU recipes ------------------------------------------------------------------------------
def shipped(candidates: str) -> list[dict]:
    return [r for r in load(candidates)["rows"] if r["candidate"] == "shipped"]


def lowest_class(row: dict) -> str:
    per = row.get("class_accuracy_per_class")
    if not per:
        return "-"
    worst = min(per, key=per.get)
    return f"{row['class_accuracy']:.3f} (lowest: {worst} {per[worst]:.3f})"


def ada_row(name: str) -> dict:
    return next(r for r in load(name)["rows"] if r["variant"].startswith("ADA (as shipped"))


def recipe_rows(short: bool = False) -> list[list]:
    q = load("quickstart.json")
    rows = [
        [
            "`quickstart_cpu` (`make train`)",
            "-",
            q["progress_line"].split()[1].split("/")[1],
            f"{minutes(q['seconds_total'])} in all ({minutes(q['seconds_training'])} training), "
            f"alone, {q['machine']['date']}",
            f"{q['cfid']:.1f}",
            f"{q['precision']:.2f} / {q['recall']:.2f}",
            "-",
        ]
    ]
    for r in shipped("conditional_fashion_mnist_candidates.json"):
        rows.append(
            [
                "`conditional_fashion_mnist`",
                r["seed"],
                r["iterations"],
                f"{minutes(r['train_s'])}, {r['run_as']}",
                f"{r['fid']:.1f}",
                f"{r['precision']:.2f} / {r['recall']:.2f}",
                lowest_class(r),
            ]
        )
    for name, label in (("limited_data.json", "2,000"), ("limited_data_500.json", "500")):
        d, r = load(name), ada_row(name)
        rows.append(
            [
                f"`limited_data_ada` on {label} images",
                "-",
                d["iterations"],
                f"{minutes(r['train_s'])}, {d['machine']}",
                f"{r['cfid']:.1f}",
                f"{r['precision']:.2f} / {r['recall']:.2f}",
                "-",
            ]
        )
    if short:
        rows = [[r[0], r[1], r[2], r[4], r[5], r[6].split(" (")[0]] for r in rows]
    return rows


def cpu_recipes() -> str:
    head = [
        "recipe",
        "seed",
        "iterations",
        "time, 2 CPU cores",
        "cFID",
        "precision / recall",
        "class accuracy",
    ]
    return (
        table(head, recipe_rows())
        + "\n"
        + source(
            "experiments/quickstart.json",
            "experiments/conditional_fashion_mnist_candidates.json",
            "experiments/limited_data.json",
            "experiments/limited_data_500.json",
        )
    )


def readme_recipes() -> str:
    head = ["recipe", "seed", "iterations", "cFID", "precision / recall", "class accuracy"]
    return table(head, recipe_rows(short=True))


def quickstart_progress() -> str:
    q = load("quickstart.json")
    return (
        "```\n$ make train        # on a machine without a GPU: ganlab-train experiment=quickstart_cpu\n...\n"
        f"{q['progress_line']}\n```\n\n"
        + source("experiments/quickstart.json").replace(
            ".</small>",
            f": the last progress line of `make train`, {q['machine']['date']}, "
            f"{q['machine']['cpu_cores']} cores, captured by "
            "`python experiments/readme_figures.py quickstart`.</small>",
        )
    )


def judge() -> str:
    j = load("fashion_judge.json")
    refs = j["references_n2000"]
    per = j["test_accuracy_per_class"]
    out = f"Test accuracy {j['test_accuracy']:.3f} ({j['epochs']} epochs). "
    out += "Per class, on the real test images:\n\n"
    out += table(list(per), [[f"{v:.2f}" for v in per.values()]])
    out += "\nIts scale: real images against the training set, as the GANs are judged (2,000 images):\n\n"
    sets: dict[str, dict[str, float]] = {}
    for key, value in refs.items():
        name, _, metric = key.partition(": ")
        sets.setdefault(name, {})[metric or "cFID"] = value
    rows = [[name, *(m.get(k, "-") for k in ("cFID", "precision", "recall"))] for name, m in sets.items()]
    out += table(["images", "cFID", "precision", "recall"], rows)
    return out + "\n" + source("experiments/fashion_judge.json")


def quality_curves() -> str:
    out = []
    for name in ("conditional_fashion_mnist", "quickstart_cpu"):
        d = load(f"quality_curve_{name}.json")
        cls = "class_accuracy" in d["rows"][0]
        head = ["iteration", "minutes from the command", "cFID", "precision", "recall"] + (
            ["class accuracy"] if cls else []
        )
        rows = [
            [
                r["iteration"],
                f"{r['seconds'] / 60:.1f}",
                f"{r['cfid']:.1f}",
                f"{r['precision']:.2f}",
                f"{r['recall']:.2f}",
            ]
            + ([f"{r['class_accuracy']:.2f}"] if cls else [])
            for r in d["rows"]
        ]
        out.append(f"`{name}` ({d['machine']}):\n\n" + table(head, rows))
    c = load("quality_curve_conditional_fashion_mnist.json")
    both = [r for r in c["rows"] if "fid" in r]
    rows = [
        [
            r["iteration"],
            f"{r['cfid']:.1f}",
            f"{r['fid']:.1f}",
            f"{r['kid']:.3f}",
            f"{r['inception_precision']:.2f}",
        ]
        for r in both
    ]
    head = [
        "iteration",
        f"cFID (judge, {c['n']:,} images)",
        f"InceptionV3 FID ({c['inception_n']} images)",
        "KID",
        "Inception precision",
    ]
    out.append(
        "The judge against InceptionV3 on the conditional run's checkpoints "
        f"(Spearman rank correlation {c['cfid_vs_fid_spearman']:.2f}):\n\n" + table(head, rows)
    )
    files = [f"experiments/quality_curve_{n}.json" for n in ("conditional_fashion_mnist", "quickstart_cpu")]
    return "\n".join(out) + "\n" + source(*files)


# -- the training doctor ----------------------------------------------------------------------------
# What each condition's thresholds mean, filled in from its entry in conf/callbacks/default.yaml.
CONDITIONS = {
    "d_overpowers": (
        "D right on >= {acc_fake:.0%} of the fakes and D(G(z)) <= {d_fake}",
        "accuracy on the fakes < {clear_acc_fake:.0%} or D(G(z)) > {clear_d_fake}",
        "`optimizer.d.lr=<D's rate / 5>` (and G's rate up to it when slower), `loss.real_smoothing=0.1`, "
        "`model.d_steps_per_g=1` when above 1",
        "D's learning rate / 5",
    ),
    "d_memorises": (
        "r_train - r_v >= {gap}: D scores its training images as real, held-out real ones "
        "(`data.holdout`) not (measured every {slices_every}th logging interval: its patience counts "
        "measurements)",
        "the gap < {clear_gap}",
        "ADA as `experiment=limited_data_ada` ships it (or an ADA run's target lowered); more data",
        "ADA switched on",
    ),
    "mode_collapse": (
        "the fakes of a batch spread < {diversity}x as far as the reals (pixels pooled to 16x16; within each "
        "class for a conditional run), not growing by {rising} over the last {patience} ticks, while "
        "D(G(z)) > {d_fake}",
        "the spread >= {clear_diversity}x the reals'",
        "resume from the last healthy checkpoint, `model.d_every=1`, G's rate / 2, `loss.r1_gamma=1`",
        "-",
    ),
    "divergence": (
        "the divergence guard's NaN/inf or `train.loss_bound` (`train.on_divergence`)",
        "the guard reports no divergence",
        "the newest good checkpoint, both rates / 2 (2e-4 when above 1e-3), `train.on_divergence=rollback`",
        "-",
    ),
    "augment_leak": (
        "ADA's p >= {p} and not falling (p minus its value {patience} ticks before >= {rise})",
        "p < {clear_p}",
        "ADA's target raised",
        "-",
    ),
    "quality_regression": (
        "FID > {ratio}x its best",
        "FID <= {clear_ratio}x its best",
        "`ckpt_path=.../best.ckpt`; the settings a resume since the best changed (`resume_diff.json`) back; "
        "else both rates / 2",
        "the run stops (`best.ckpt` kept)",
    ),
}


def doctor_conf() -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(ROOT / "ganlab" / "conf" / "callbacks" / "default.yaml"))[
        "doctor"
    ]


def doctor_thresholds() -> str:
    conf = doctor_conf()
    unknown = set(conf["conditions"]) - set(CONDITIONS)
    if unknown:
        raise SystemExit(
            f"docs/render.py: describe the doctor's new condition(s) {sorted(unknown)} in CONDITIONS"
        )
    rows = []
    for name, entry in conf["conditions"].items():
        module, _, cls = entry["_target_"].rpartition(".")
        klass = getattr(importlib.import_module(module), cls)
        values = {k: v for k, v in entry.items() if k != "_target_"}
        start, end, fix, act = (
            s.format(**values, slices_every=conf["slices_every"]) for s in CONDITIONS[name]
        )
        ticks = {"log": "logging interval", "evaluation": "evaluation", "rollback": "rollback"}[klass.ticks]
        refs = ", ".join(f"`{k}` ({type(v).__name__} of `{v.signal}`)" for k, v in klass.references.items())
        rows.append(
            [f"`{name}`", f"`{cls}`", start, end, f"{values['patience']} {ticks}(s)", refs or "-", fix, act]
        )
    head = [
        "condition",
        "class",
        "starts when",
        "ends when",
        "patience (ticks)",
        "references",
        "suggests",
        "autopilot (`act=true`)",
    ]
    intro = (
        f"No condition starts before iteration {conf['warmup_iterations']} "
        "(`callbacks.doctor.warmup_iterations`; `divergence` excepted); "
        f"D is scored on {conf['probe_size']} training and {conf['probe_size']} held-out "
        f"images every {conf['slices_every']}th logging interval (`callbacks.doctor.slices_every`).\n\n"
    )
    return intro + table(head, rows) + "\n" + source("ganlab/conf/callbacks/default.yaml")


def doctor_benchmark() -> str:
    return script("doctor").table(load("doctor.json")) + "\n\n" + source("experiments/doctor.json")


def doctor_set(name: str) -> str:
    """The table of one of ``experiments/doctor_sets.py``'s sets other than tuning."""
    return (
        script("doctor").table(load(f"doctor_{name}.json"))
        + "\n\n"
        + source(f"experiments/doctor_{name}.json", "experiments/doctor_sets.py")
    )


def doctor_validation_summary() -> str:
    d = load("doctor_validation.json")
    own = [f"`{r['condition']}`" for r in d["induced"] if r["named"]]
    instead = [f"`{r['condition']}` (named {', '.join(f'`{c}`' for c in r['other_conditions'])})"
               for r in d["induced"] if not r["named"] and r["other_conditions"]]  # fmt: skip
    nothing = [f"`{r['condition']}`" for r in d["induced"] if not r["named"] and not r["other_conditions"]]
    healthy = [h for h in d["healthy"] if not h.get("error")]
    flagged = [h["run"] for h in healthy if h["conditions"]]
    return (
        f"In `doctor_validation.json`: of {len(d['induced'])} induced runs, named as induced: "
        f"{', '.join(own) or 'none'}; named as something else: {', '.join(instead) or 'none'}; "
        f"nothing named: {', '.join(nothing) or 'none'}. {len(healthy)} healthy runs, "
        f"{'no condition named on any' if not flagged else 'conditions named on ' + ', '.join(flagged)}; "
        f"{d['machine']}, {d['wall_s'] / 60:.0f} min of wall time in all.\n"
    )


def doctor_summary() -> str:
    d = script("doctor").upgrade(load("doctor.json"))
    named = [r for r in d["induced"] if r["named"]]
    healthy = [h for h in d["healthy"] if not h.get("error")]
    flagged = [h for h in healthy if h["conditions"]]
    total = sum(h["iterations"] for h in healthy)
    recipes = [h["run"] for h in healthy]
    return (
        f"In `doctor.json`: {len(named)} of {len(d['induced'])} induced failures named; "
        f"{len(healthy)} healthy runs ({', '.join(f'`{r}`' for r in recipes)}; "
        f"{total:,} iterations in all) with {'no condition' if not flagged else f'{len(flagged)} flagged'}; "
        f"{d['machine']}, {d['wall_s'] / 60:.0f} min of wall time in all.\n"
    )


def overhead() -> str:
    o = load("overhead.json")
    rows = [
        [
            i + 1,
            "on" if r["doctor"] else "off (`callbacks.doctor=null`)",
            f"{r['time_ratio']:.3f}",
            f"{r['ganlab_ms_per_iter']:.2f}",
        ]
        for i, r in enumerate(o["runs"])
    ]
    out = f"`{o['command']}`, alternating, {o['machine']['date']}, {o['machine']['cpu_cores']} CPU cores:\n\n"
    out += table(["run", "training doctor", "time_ratio", "ganlab ms/iteration"], rows)
    out += (
        f"\n`time_ratio` {o['doctor']['min']:.3f}-{o['doctor']['max']:.3f} with the doctor, "
        f"{o['no_doctor']['min']:.3f}-{o['no_doctor']['max']:.3f} without"
    )
    if "doctor_cost" in o:  # python experiments/overhead.py: each pair's on / off
        pairs = ", ".join(f"{c:.3f}" for c in o["doctor_cost"]["pairs"])
        median = o["doctor_cost"]["median"]
        out += f"; the doctor's cost, each pair's ratio on / off: {pairs} (median {median:.3f})"
    out += ".\n\n"
    return out + source("experiments/overhead.json")


# -- benchmarks -----------------------------------------------------------------------------------------
def throughput() -> str:
    t = load("throughput.json")
    rows = [
        [
            label,
            f"{r['ganlab_img_per_s']:.1f}",
            f"{r['ganlab_ms_per_iter']:.0f}",
            f"{r['reference_img_per_s']:.1f}",
            f"{r['time_ratio']:.3f}",
        ]
        for label, r in (
            ("image files", t["files"]),
            ("`data.cache=true data.device_resident=true`", t["cached"]),
        )
    ]
    out = f"`{t['command']}`, {t['machine']['date']}, {t['machine']['cpu_cores']} CPU cores:\n\n"
    head = ["ganlab's path", "images/s", "ms/iteration", "plain step, same run (images/s)", "time_ratio"]
    return out + table(head, rows) + "\n" + source("experiments/throughput.json")


def gpu_report() -> str:
    """The GPU report's table as ``python -m ganlab.gpu_report`` writes it (``ganlab.bench.gpu.table``)."""
    from ganlab.bench.gpu import table as gpu_table

    r = load("gpu_report.json")
    notes = "".join(f"\n{note}.\n" for note in r.get("notes", []))
    if "stylegan2_source" in r:
        notes += f"\nStyleGAN2 rows: {r['stylegan2_source']}.\n"
    return gpu_table(r) + notes + "\n" + source("experiments/gpu_report.json")


def startup() -> str:
    s = load("startup.json")
    first, rss = s["first_iteration_quickstart"], s["peak_rss_64px"]
    rows = [
        ["`ganlab-train --help`", f"{s['help']['seconds_median']:.2f} s", "", ""],
        ["`ganlab-train --cfg job`", f"{s['cfg_job']['seconds_median']:.2f} s", "", ""],
        [
            "command to first iteration, `experiment=quickstart_cpu`",
            f"{first['ganlab']:.2f} s",
            f"{first['plain']:.2f} s",
            f"{first['ratio']:.2f}x",
        ],
        [
            "peak RSS, DCGAN 64 px",
            f"{rss['ganlab']:.0f} MiB",
            f"{rss['plain']:.0f} MiB",
            f"{rss['ratio']:.2f}x",
        ],
    ]
    head = ["what", "ganlab", "pytorch/examples DCGAN (`experiments/plain_dcgan.py`)", "ratio"]
    m = s["machine"]
    note = f"Medians of {len(s['help']['seconds'])} runs, {m['cpus']} CPU cores, Python {m['python']}.\n\n"
    return table(head, rows) + "\n" + note + source("experiments/startup.json")


# -- results ----------------------------------------------------------------------------------------------
def technique_comparison() -> str:
    compare_techniques = script("compare_techniques")
    d = load("technique_comparison.json")
    head = (
        f"{d['iterations']:,} iterations, seeds {', '.join(map(str, d['seeds']))}, {d['n_fake']:,} samples "
        f"against {d['n_real']:,} real images; {d['machine']}; cFID: mean ± half the seeds' range.\n\n"
    )
    return head + compare_techniques.table(d["rows"]) + "\n" + source("experiments/technique_comparison.json")


def limited_data() -> str:
    out = []
    for name in ("limited_data.json", "limited_data_500.json"):
        d = load(name)
        rows = [
            [
                r["variant"],
                f"{r['cfid']:.1f}",
                f"{r['precision']:.2f}",
                f"{r['recall']:.2f}",
                f"{r['d_acc_real_last_quarter']:.3f}",
                f"{max(p for _, _, p in r['series']):.2f}",
                f"{r['ada_p_end']:.2f}",
                f"{r['train_s']:.0f}",
            ]
            for r in d["rows"]
        ]
        head = [
            "variant",
            "cFID (judge)",
            "precision",
            "recall",
            "D acc. on reals, last quarter",
            "ADA p, highest",
            "ADA p at the end",
            "train s",
        ]
        out.append(
            f"{d['max_images']:,} images, {d['iterations']:,} iterations ({d['machine']}):\n\n"
            + table(head, rows)
        )
    return (
        "\n".join(out) + "\n" + source("experiments/limited_data.json", "experiments/limited_data_500.json")
    )


def truncation() -> str:
    d = load("truncation.json")
    rows = []
    for r in d["rows"]:
        s = "" if r["standing_stats"] is None else ("yes" if r["standing_stats"] else "no")
        rows.append(
            [
                "none" if r["truncation"] is None else r["truncation"],
                s,
                f"{r['precision']:.3f}",
                f"{r['recall']:.3f}",
                f"{r['class_accuracy']:.3f}",
                f"{r['cfid']:.1f}",
                f"{r['mean_pixel']:.1f}",
            ]
        )
    head = [
        "truncation",
        "standing statistics",
        "precision",
        "recall",
        "class accuracy",
        "cFID",
        "mean pixel",
    ]
    out = f"`{d['ckpt']}`, {d['n']:,} samples; real images' mean pixel {d['real_mean_pixel']:.1f}.\n\n"
    return out + table(head, rows) + "\n" + source("experiments/truncation.json")


# -- architecture -----------------------------------------------------------------------------------------
PACKAGES = {  # what each package of tests/unit/test_hygiene.py's LAYERS owns
    "ganlab.utils": (
        "atomic writes, cache keys, pixels, durations, user errors (`errors.py`), the one "
        '"every N" cadence (`every_n.py`), the table of paths that moved (`moved.py`), '
        "a sweep's reading (`sweep.py`)"
    ),
    "ganlab.models": (
        "networks, plain `nn.Module`s: DCGAN, ResNet, Siamese, StyleGAN2 (`models/stylegan2/`, "
        "with the official pickle reader), conditioning and truncation"
    ),
    "ganlab.losses": (
        "objectives: `GANLoss` (`base.py`), one file per loss, `Step` and `LazyTerm` (`step.py`)"
    ),
    "ganlab.augment": "D's augmentations: DiffAugment, instance noise, ADA",
    "ganlab.data": (
        "datasets and data modules, the image cache and device-resident images, the start-up "
        "scan, `ganlab-fetch`"
    ),
    "ganlab.metrics": "FID/KID/IS, precision/recall and the feature networks",
    "ganlab.speed": (
        "channels_last, `torch.compile` and direct updates (`fast_paths.py`), the CUDA graph, the profiler"
    ),
    "ganlab.doctor": (
        "the doctor's device-side probe, its conditions (`base.py`, `conditions.py`), the "
        "fixes, `doctor.jsonl` read back"
    ),
    "ganlab.training": (
        "the LightningModule that schedules (`module.py`), `Schedule`/`Plan` (`schedule.py`), "
        "the module built from `model.*` (`build.py`), `GANOptimizers` (`optim.py`), EMA, latent "
        "prior, the step's statistics (`step_stats.py`), the run's `History` (`history.py`), "
        "counters, per-rank random streams, the G/D DDP strategy (`ddp.py`)"
    ),
    "ganlab.checkpoint": (
        'the format of `checkpoint["ganlab"]` (`format.py`: `GanlabState`, version upgrades, '
        "the newest intact checkpoint), atomic writes (`io.py`), a checkpoint's generator "
        "outside training"
    ),
    "ganlab.run": (
        "settings checked once (`checks.py`), resolvers, the run directory and its lock, the "
        "resume (`resume.py`: `ResumePoint`), SLURM, the first screen (`console.py`), the "
        "report's plots (`plots.py`)"
    ),
    "ganlab.callbacks": (
        "one file per key of `conf/callbacks`: guard, run length, checkpoint, samples, "
        "evaluation, progress, preemption, doctor, report; and `run_state`, always added"
    ),
    "ganlab.loggers": (
        "one file per key of `conf/logger`: `csv.py` (appends across resumes), `wandb.py` "
        "(one W&B run continued, each iteration once)"
    ),
}


def layers_source() -> tuple:
    tree = ast.parse((ROOT / "tests" / "unit" / "test_hygiene.py").read_text())
    node = next(
        n for n in tree.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "LAYERS"
    )
    return ast.literal_eval(node.value)


def layers() -> str:
    rows = [
        [
            "command line (top)",
            "`train.py`, `evaluate.py`, `generate.py`, `report.py`, `gpu_report.py`, `api.py`, `bench/`",
            "`ganlab-train` ... and the Python API; `conf/`: the Hydra groups",
        ]
    ]
    for name, packages in reversed(layers_source()):
        for i, package in enumerate(packages):
            if package not in PACKAGES:
                raise SystemExit(f"docs/render.py: say what {package} owns in PACKAGES")
            rows.append([name if i == 0 else "", f"`{package}`", PACKAGES[package]])
    head = ["layer (top down)", "package", "what it owns"]
    return table(head, rows) + "\n" + source("tests/unit/test_hygiene.py (LAYERS)")


def resnet_counts() -> str:
    tree = ast.parse((ROOT / "tests" / "unit" / "test_conditional.py").read_text())
    node = next(
        n
        for n in tree.body
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "RESNET_COUNTS"
    )
    counts = ast.literal_eval(node.value)
    follows = {
        32: "SNGAN CIFAR-10 ResNet",
        64: "mimicry's SNGAN 64",
        128: "BigGAN ch 64 (without its shared embedding and attention)",
    }
    rows = [[px, f"{g:,}", f"{d:,}", follows.get(px, "")] for px, (g, d) in counts.items()]
    return (
        table(["px", "G", "D", "follows"], rows)
        + "\n"
        + source("tests/unit/test_conditional.py (RESNET_COUNTS, asserted)")
    )


FRAGMENTS = {
    "cpu_recipes.md": cpu_recipes,
    "quickstart_progress.md": quickstart_progress,
    "judge.md": judge,
    "quality_curves.md": quality_curves,
    "doctor_thresholds.md": doctor_thresholds,
    "doctor_benchmark.md": doctor_benchmark,
    "doctor_summary.md": doctor_summary,
    "doctor_validation.md": lambda: doctor_set("validation"),
    "doctor_natural.md": lambda: doctor_set("natural"),
    "doctor_validation_summary.md": doctor_validation_summary,
    "overhead.md": overhead,
    "throughput.md": throughput,
    "startup.md": startup,
    "gpu_report.md": gpu_report,
    "technique_comparison.md": technique_comparison,
    "limited_data.md": limited_data,
    "truncation.md": truncation,
    "layers.md": layers,
    "resnet_counts.md": resnet_counts,
}
README_BLOCKS = {"cpu_recipes": readme_recipes}


def readme(text: str) -> str:
    for name, render in README_BLOCKS.items():
        begin, end = BEGIN.format(name), END.format(name)
        pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.S)
        if not pattern.search(text):
            raise SystemExit(f"README.md: the block {begin} ... {end} is missing")
        block = f"{begin}\n{render()}{end}"
        text = pattern.sub(lambda _, block=block: block, text)
    return text


def rendered() -> dict[Path, str]:
    """Every rendered file, as it should read now."""
    out = {GEN / name: render() for name, render in FRAGMENTS.items()}
    out[README] = readme(README.read_text())
    return out


def scripts_markdown() -> list[str]:
    """The experiment scripts' own ``.md`` files that disagree with their JSON (what they would
    write from it now)."""
    compare_techniques, doctor = script("compare_techniques"), script("doctor")
    recipe_candidates = script("recipe_candidates")

    stale = []
    if doctor.table(load("doctor.json")) not in (EXP / "doctor.md").read_text():
        stale.append("experiments/doctor.md (python experiments/doctor.py --set tuning --render)")
    for name in ("validation", "natural"):
        if doctor.table(load(f"doctor_{name}.json")) not in (EXP / f"doctor_{name}.md").read_text():
            stale.append(f"experiments/doctor_{name}.md (python experiments/doctor.py --set {name} --render)")
    if (
        compare_techniques.table(load("technique_comparison.json")["rows"])
        != (EXP / "technique_comparison.md").read_text()
    ):
        stale.append("experiments/technique_comparison.md (python experiments/compare_techniques.py)")
    for path in sorted(EXP.glob("*_candidates.json")):
        d, md = json.loads(path.read_text()), path.with_suffix(".md")
        recipe = path.stem.removesuffix("_candidates")
        parts = [recipe_candidates.table(d["rows"])]
        parts += [
            "\n".join(
                recipe_candidates.curve_table(recipe_candidates.truncation_title(recipe, n), "threshold", c)
            )
            for n, c in d.get("truncation", {}).items()
        ]
        parts += [
            "\n".join(recipe_candidates.curve_table(f"Snapshots, `{n}`", "iteration", c))
            for n, c in d.get("snapshots", {}).items()
        ]
        text = md.read_text() if md.is_file() else ""
        if not all(p in text for p in parts):
            stale.append(f"experiments/{md.name} (python experiments/recipe_candidates.py --recipe {recipe})")
    return stale


def stale() -> list[str]:
    found = [
        str(p.relative_to(ROOT)) for p, text in rendered().items() if not p.is_file() or p.read_text() != text
    ]
    extra = sorted(set(GEN.glob("*.md")) - {GEN / n for n in FRAGMENTS})
    return (
        found + [f"{p.relative_to(ROOT)} (no longer rendered: remove it)" for p in extra] + scripts_markdown()
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 when a rendered file is stale")
    args = p.parse_args()
    if args.check:
        found = stale()
        if found:
            raise SystemExit("stale (python docs/render.py, or the script named):\n  " + "\n  ".join(found))
        print("the rendered docs match their sources")
        return
    GEN.mkdir(parents=True, exist_ok=True)
    for path, text in rendered().items():
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
            print("wrote", path.relative_to(ROOT))
    for name in scripts_markdown():
        print("stale, rerun its script:", name)


if __name__ == "__main__":
    main()
