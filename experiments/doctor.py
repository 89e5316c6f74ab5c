"""The training doctor's benchmark on two sets of runs (``experiments/doctor_sets.py``): the tuning
set its thresholds, rules and fixes were chosen on, and a validation set written down before it
was run, on other data, networks, losses and causes. Each condition is induced on purpose on a
CPU; the doctor must name it (at which iteration and kimg, how far past its thresholds: the
margin), and nothing on the set's healthy runs (each condition's closest approach: the margin it
kept, from ``doctor_margins.json``). Then each named run's fix, typed exactly as printed (the
``ckpt_path`` resume included, nothing dropped), and, for the conditions that have an
autopilot action, the same run with ``callbacks.doctor.act=true`` (the two side by side); both
judged against the run left alone, at the same iteration. A condition not named has neither.
A third set, ``natural``, holds runs whose failure no change of config caused.

    python experiments/doctor.py --set validation [--lanes 2] [--threads 1] [--only d_overpowers,...]
    python experiments/doctor.py --set tuning [--skip-healthy] [--healthy conditional_fashion_mnist_seed0,...]

The judge: Fashion-MNIST runs by ``experiments/fashion_judge.pt`` (cFID, precision/recall: 2,000
samples against 10k images of the *whole* set, ``full_data=true``, as Karras et al. 2020 score
limited-data runs); emoji runs by InceptionV3 (500 samples against the 3,786 images). For the
tuning set and every ``quality_regression`` row, the damage is read from the judge's curve as
well: every snapshot at a multiple of 250 iterations scored with 500 samples, the first snapshot
from which the judge's cFID stays over 1.5x the healthy quickstart run's at the same iteration,
or, for ``d_memorises`` and ``quality_regression``, over 1.1x the run's own best so far. Runs
also evaluate FID in the judge's features while they train (against their training set, every
250 iterations), the series ``quality_regression`` reads. Writes ``experiments/doctor.{json,md}``
(tuning) and ``experiments/doctor_{validation,natural}.{json,md}``; the runs go to
``outputs/doctor/<set>/``, and a rerun reuses the finished ones (``seconds.json``).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import JUDGE, ROOT, evaluate, inception, machine, train
from doctor_sets import SETS

OUT = ROOT / "outputs" / "doctor"  # the runs (git-ignored), one folder per set
EVAL = [
    f"callbacks.evaluation.feature={JUDGE}",
    "callbacks.evaluation.n=500",
    "callbacks.evaluation.n_real=5000",
    "callbacks.evaluation.every_n_iterations=250",
    "callbacks.evaluation.inception_score=false",
    "callbacks.evaluation.batch_size=250",
]
SEED = 42
REFERENCE = "quickstart_cpu_seed0"  # the tuning set's healthy run the damage is read against


def acting() -> set[str]:
    """The conditions the autopilot acts on: those whose class defines ``act``."""
    from hydra.utils import get_class
    from omegaconf import OmegaConf

    from ganlab.doctor.base import Condition

    conf = OmegaConf.load(ROOT / "ganlab" / "conf" / "callbacks" / "default.yaml").doctor.conditions
    return {name for name, c in conf.items() if get_class(c._target_).act is not Condition.act}


def emoji(overrides: list[str]) -> bool:
    return "data=emoji64" in overrides


def judged(ckpt: Path, overrides: list[str], n: int, threads: int | None) -> dict:
    """The judge's figures for ``ckpt`` (see the module's docstring)."""
    if emoji(overrides):
        return inception(ckpt, 500, "full_data=true", threads=threads)
    out = ckpt.with_suffix(f".full{n}.json")
    extra = ("inception_score=false", "full_data=true")
    return evaluate(ckpt, out, str(JUDGE), n, 10_000, *extra, threads=threads)


def judge_curve(run_dir: Path, threads: int | None) -> list[tuple[int, float]]:
    """(iteration, judge cFID against the whole set) of every 250-iteration snapshot."""
    snaps = sorted(run_dir.glob("checkpoints/it*.ckpt"))
    return [
        (int(p.stem[2:]), judged(p, [], 500, threads)["fid"]) for p in snaps if int(p.stem[2:]) % 250 == 0
    ]


def events(run_dir: Path) -> list[dict]:
    path = run_dir / "doctor.jsonl"
    return [json.loads(ln) for ln in path.read_text().splitlines()] if path.is_file() else []


def margins(run_dir: Path) -> dict:
    path = run_dir / "doctor_margins.json"
    return json.loads(path.read_text())["conditions"] if path.is_file() else {}


def damage_at(curve, reference, condition: str) -> int | None:
    """The first snapshot from which the judge's cFID stays bad (see the module's docstring)."""
    ref = dict(reference or [])  # quality_regression's damage needs none: the run's own best
    bad, best = [], float("inf")
    for it, fid in curve:
        if condition in ("d_memorises", "quality_regression"):
            bad.append(fid > 1.1 * best)
            best = min(best, fid)
        else:
            bad.append(it in ref and fid > 1.5 * ref[it])
    for i, (it, _) in enumerate(curve):
        if bad[i] and all(bad[i:]):
            return it
    return None


def run(out: Path, name: str, overrides: list[str], iterations: int, args) -> Path:
    run_dir = out / name
    evals = ["callbacks.report=null"] + ([] if emoji(overrides) else EVAL)
    try:  # the entry's own overrides after the evaluation's: they win (emoji: no FID while training)
        train(
            run_dir, [f"seed={SEED}", *evals, *overrides, f"train.max_iterations={iterations}"], args.threads
        )
    except RuntimeError as e:  # a run that diverges ends with ganlab's DivergenceError (exit 1)
        if "training diverged" not in str(e):
            raise
        (run_dir / "diverged").touch()  # stopped by the guard (a rollback that recovers is no stop)
        (run_dir / "seconds.json").write_text("{}")  # finished, as far as a rerun is concerned
    return run_dir


def final(run_dir: Path) -> Path | None:
    """What a run leaves its user: best.ckpt when the autopilot stopped it there, else last.ckpt."""
    for e in events(run_dir):  # the autopilot's stop names the best weights ("... are in PATH")
        if e.get("action", "").startswith("stopped; the best weights are in "):
            return Path(e["action"].split(" are in ", 1)[1])
    last = run_dir / "checkpoints" / "last.ckpt"
    return last if last.is_file() else None


def score(run_dir: Path, overrides: list[str], args) -> dict | None:
    ckpt = final(run_dir)
    if (run_dir / "diverged").is_file() or ckpt is None:
        return None
    return judged(ckpt, overrides, args.n, args.threads)


def checkout_relative(command: str) -> str:
    """A printed fix or action with this checkout's path stripped: the pages render alike anywhere."""
    return command.replace(str(ROOT) + "/", "")


def condition_of(entry: str, entries: dict) -> str:
    """The condition an induced entry expects: its name, or the 4th item of its tuple."""
    return entries[entry][3] if len(entries[entry]) > 3 else entry


def induced(entry: str, args, out: Path, entries: dict, reference) -> dict:
    how, overrides, iterations = entries[entry][:3]
    condition = condition_of(entry, entries)
    ref = f"healthy_{REFERENCE}"  # "{healthy_quickstart_cpu_seed0}" in an entry: that run's folder
    overrides = [o.replace(f"{{{ref}}}", str(out / ref)) for o in overrides]
    run_dir = run(out, entry, overrides, iterations, args)
    starts = [e for e in events(run_dir) if e["event"] == "start"]
    ev = [e for e in starts if e["condition"] == condition]
    row = {"entry": entry, "condition": condition, "induced_by": how, "overrides": overrides,
           "iterations": iterations, "named": bool(ev),
           "other_conditions": sorted({e["condition"] for e in starts} - {condition}),
           "margins": margins(run_dir), "left_alone": score(run_dir, overrides, args),
           "diverged": (run_dir / "diverged").is_file()}  # fmt: skip
    if reference or condition == "quality_regression":  # the judge's curve and where it shows the damage
        curve = judge_curve(run_dir, args.threads)
        resumed = [int(Path(o.split("=", 1)[1]).stem[2:]) for o in overrides
                   if o.startswith("ckpt_path=") and Path(o).name.startswith("it")]  # fmt: skip
        if resumed:  # the healthy run's judged snapshots up to the one it resumed: the best the judge saw
            curve = [(it, fid) for it, fid in reference if it <= resumed[0]] + curve
        row.update(judge_curve=curve, damage_at=damage_at(curve, reference, condition))
    ev = ev or starts[:1]  # not named: what a user would type is the fix of what it named instead
    if not ev:  # no fix printed, and an autopilot would not act: the same run again
        return row
    first = ev[0]
    row.update(named_at=first["iteration"], named_kimg=first["kimg"], since=first["since_iteration"],
               margin=first.get("margin"), fix=first["fix"], message=first["message"],
               fix_of=first["condition"])  # fmt: skip
    if row.get("damage_at") is not None:
        row["lead_iterations"] = row["damage_at"] - first["iteration"]
    with ThreadPoolExecutor(2) as pool:  # the two runs side by side: a lane each, where lanes are free
        acts = first["condition"] in acting()
        if acts:  # the autopilot judged: the same run with act=true
            auto = pool.submit(run, out, f"{entry}_autopilot", [*overrides, "callbacks.doctor.act=true"],
                               iterations, args)  # fmt: skip
        # The fix typed exactly as printed, after the run's own overrides (so it wins), to the same length.
        fixed = run(out, f"{entry}_fixed", [*overrides, *first["fix"]], iterations, args)
        if acts:
            auto = auto.result()
            row["autopilot"] = score(auto, overrides, args)
            acted = [e["action"] for e in events(auto) if e.get("action")]
            row["autopilot_actions"] = [checkout_relative(a) for a in acted]
    row["fixed"] = score(fixed, overrides, args)
    row["fix_run"] = " ".join(checkout_relative(f) for f in first["fix"])
    row["fixed_conditions"] = sorted({e["condition"] for e in events(fixed) if e["event"] == "start"})
    return row


def healthy(name: str, args, out: Path, entries: dict) -> dict:
    overrides, iterations = entries[name]
    run_dir = run(out, f"healthy_{name}", overrides, iterations, args)
    row = {"run": name, "overrides": overrides, "iterations": iterations,
           "judged": score(run_dir, overrides, args),  # the same judge as the induced runs'
           "conditions": [e["message"] for e in events(run_dir) if e["event"] == "start"],
           "margins": margins(run_dir)}  # fmt: skip
    if name == REFERENCE and args.set == "tuning":  # the reference the damage is read against
        row["judge_curve"] = judge_curve(run_dir, args.threads)
    return row


def guarded(fn, key: str, name: str, *args) -> dict:
    """``fn(name, *args)``'s row, or a row that says the run failed (the others go on)."""
    try:
        return fn(name, *args)
    except Exception as e:  # noqa: BLE001  (reported in the row and on the console)
        print(f"{name}: {e}", flush=True)
        row = {key: name, "error": str(e).splitlines()[-1][:300], "named": False, "conditions": [],
               "other_conditions": [], "margins": {}, "iterations": 0, "induced_by": ""}  # fmt: skip
        return row | ({"entry": name} if key == "condition" else {})


def fid(x: dict | None) -> str:
    return "-" if not x else f"{x['fid']:.1f} ({x['precision']:.2f} / {x['recall']:.2f})"


def closest(m: dict | None) -> str:
    """A condition's closest approach in a healthy run: its margin, the iteration, the binding clause."""
    c = (m or {}).get("closest")
    if not c:
        return "-"
    return ("**named** " if m.get("started") else "") + f"{c['margin']:+.2f} @{c['iteration']}"


def upgrade(result: dict) -> dict:
    """A result of the benchmark before its two sets (2026-12-01: one set, no margins, the fix run
    not resumed): its rows under today's keys, the figures it did not measure left out."""
    result = copy.deepcopy(result)
    result = {"set": "tuning", "conditions": [r["condition"] for r in result["induced"]], **result}
    for r in result["induced"]:
        r.setdefault("entry", r["condition"])  # before 2026-12-03 an entry was named by its condition
        if "before" in r and "left_alone" not in r:  # then: no autopilot runs; the fix run less its resume
            r.update(left_alone=r["before"], fixed=r.get("after"), autopilot_measured=False)
            r["diverged"] = r["condition"] == "divergence" and r["before"] is None
            typed = r.get("fix_run", "")
            dropped = [f.split("=")[0] for f in r.get("fix", []) if f.replace(f"{ROOT}/", "") not in typed]
            r["fix_note"] = f" (the printed fix less `{'`, `'.join(dropped)}`)" if dropped else ""
    for h in result["healthy"]:
        h.setdefault("run", f"{h.get('recipe')}_seed{h.get('seed')}")
        h.setdefault("margins", {})
    return result


def table(result: dict) -> str:
    result = upgrade(result)
    lines = [
        "| condition | induced by | named at iteration (kimg) | margin | judge shows it at "
        "| fix typed as printed | left alone | fix | autopilot |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["induced"]:
        if r.get("error"):
            error = r["error"].replace("|", "/")
            lines.append(f"| `{r['condition']}` | **the run failed**: {error} |" + " |" * 7)
            continue
        shown = r.get("damage_at") or "-"
        at = f"{r['named_at']} ({r['named_kimg']:.1f})" if "named_at" in r else ""
        others = ", ".join(f"`{c}`" for c in r["other_conditions"])
        if r["named"]:
            named = at + (f"; also {others}" if others else "")
        else:  # its fix and autopilot columns are those of what it named instead, if anything
            named = "**not named**" + (
                f"; named instead: {others} (first at {at})" if others else "; nothing named"
            )
        if r["named"]:
            margin = "-" if r.get("margin") is None else f"{r['margin']:+.2f}"
        else:  # how close its own test came: a miss by a hair reads differently from a blind spot
            margin = closest(r.get("margins", {}).get(r["condition"]))
        then = r.get("fixed_conditions")
        then = f" (then: {', '.join(then)})" if then else ""
        fix = f"`{r['fix_run']}`{r.get('fix_note', '')}{then}" if r.get("fix_run") else "-"
        auto = "-"
        if "autopilot" in r:
            auto = fid(r["autopilot"]) + "".join(f": {a}" for a in r.get("autopilot_actions", [])[:1])
        elif r.get("fix_run"):
            auto = "not measured" if r.get("autopilot_measured") is False else "(no action)"
        left = fid(r.get("left_alone")) if r.get("left_alone") else "stopped" if r.get("diverged") else "-"
        cells = [
            f"`{r['condition']}`",
            r["induced_by"],
            named,
            margin,
            str(shown),
            fix,
            left,
            fid(r.get("fixed")),
            auto,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    conds = list(result["conditions"])
    head = (
        "| healthy run | iterations | judged | conditions named | "
        + " | ".join(f"`{c}`" for c in conds)
        + " |"
    )
    if not result["healthy"]:  # a set of induced runs only
        return "\n".join(lines)
    lines += ["", head, "|---|---|---|---|" + "---|" * len(conds)]
    for h in result["healthy"]:
        named = len(h["conditions"]) or ("**the run failed**: " + h["error"] if h.get("error") else "none")
        cells = " | ".join(closest(h["margins"].get(c)) for c in conds)
        lines.append(f"| `{h['run']}` | {h['iterations']} | {fid(h.get('judged'))} | {named} | {cells} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--set", choices=sorted(SETS), required=True)
    p.add_argument("--lanes", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--n", type=int, default=2000, help="judged samples per Fashion-MNIST checkpoint")
    p.add_argument("--only", default="", help="comma-separated induced entries (the other rows are kept)")
    p.add_argument("--skip-healthy", action="store_true")
    p.add_argument("--healthy", default="", help="only these healthy runs (the other rows are kept)")
    p.add_argument("--render", action="store_true", help="only rewrite the set's .md from its .json")
    args = p.parse_args()
    entries, out = SETS[args.set], OUT / args.set
    out.mkdir(parents=True, exist_ok=True)
    path = ROOT / "experiments" / ("doctor.json" if args.set == "tuning" else f"doctor_{args.set}.json")
    old = {"induced": [], "healthy": [], "wall_s": 0}
    if path.is_file():
        old = upgrade(json.loads(path.read_text()))
    if args.render:  # the page from the committed JSON, nothing run
        write_md(old, path)
        return
    t0 = time.time()
    only = [c for c in args.only.split(",") if c] or ([] if args.healthy else list(entries["induced"]))
    names = [] if args.skip_healthy else [h for h in args.healthy.split(",") if h] or list(entries["healthy"])
    with ThreadPoolExecutor(args.lanes) as pool:
        jobs = {n: pool.submit(guarded, healthy, "run", n, args, out, entries["healthy"]) for n in names}
        reference = None
        if args.set == "tuning" and only:  # the damage is read against the healthy quickstart run
            ref = jobs.get(REFERENCE) or pool.submit(healthy, REFERENCE, args, out, entries["healthy"])
            reference = ref.result().get("judge_curve")  # None when the reference run failed
        rows = [
            pool.submit(guarded, induced, "condition", c, args, out, entries["induced"], reference)
            for c in only
        ]
        rows = [r.result() for r in rows]
        healthy_rows = [j.result() for j in jobs.values()]
    order, horder = list(entries["induced"]), list(entries["healthy"])
    result = {
        "set": args.set,
        "machine": machine(args.threads, args.lanes),
        "judge": f"{JUDGE.relative_to(ROOT)} (emoji: InceptionV3, fid_helper)",
        "conditions": list(dict.fromkeys(condition_of(e, entries["induced"]) for e in order)),
        "induced": sorted(
            [r for r in old["induced"] if r["entry"] not in only] + rows,
            key=lambda r: order.index(r["entry"]),
        ),  # fmt: skip
        "healthy": sorted(
            [h for h in old["healthy"] if h.get("run") not in names] + healthy_rows,
            key=lambda h: horder.index(h["run"]) if h.get("run") in horder else -1,
        ),  # fmt: skip
        "wall_s": round(old.get("wall_s", 0) + time.time() - t0, 1),
    }
    write(result, path)


def write(result: dict, path: Path) -> None:
    path.write_text(json.dumps(result, indent=1))
    write_md(result, path)


def write_md(result: dict, path: Path) -> None:
    title = {"tuning": "the tuning set (where its rules were chosen)",
             "validation": "the validation set (written down before it was run)",
             "natural": "failures no change of config caused"}[result["set"]]  # fmt: skip
    path.with_suffix(".md").write_text(
        f"# The training doctor on {title}\n\n"
        f"`python experiments/doctor.py --set {result['set']}` ({result['machine']}); raw numbers in "
        f"`{path.name}`. Judged: cFID (precision / recall); margin: how far past (< 0) or short of (> 0) "
        "its start test a condition was, in units of its thresholds, when named or at its closest "
        "approach (iteration after @).\n\n" + table(result) + "\n"
    )
    print(table(result))


if __name__ == "__main__":
    main()
