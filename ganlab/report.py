"""``ganlab-report``: the run report, the plots every GAN write-up draws, from a run directory.

    ganlab-report RUN_DIR [--out DIR] [--columns 8] [--rows 12]
    ganlab-report SWEEP_DIR        (a multirun folder: the doctor's diagnosis of every run, one table)

Prints the training doctor's diagnosis of the run (``doctor.jsonl``: each condition, since when,
the evidence and the fix).

Written at the end of every run (``ganlab.callbacks.report.RunReport``) and on demand, into
``RUN_DIR/report/``:
  losses.png      loss_d and loss_g over training, the doctor's conditions as shaded bands
  d_outputs.png   D(x) and D(G(z)), D's mean output probability on real and on generated images
  d_accuracy.png  D's accuracy on real and on generated images (0.5: D cannot tell them apart),
                  with the doctor's bands
  metrics.png     FID and KID over training, when the run evaluated
  doctor.txt      the training doctor's diagnosis (doctor.jsonl), when it found anything
  timeline.png    the same fixed latents (the first ``columns`` of the run's sample-grid noise;
                  conditional runs: one per class) rendered by successive checkpoints, one row
                  per checkpoint
The curves come from the CSV logger's ``metrics.csv`` (``logger.csv``, on by default), the
timeline from ``checkpoints/it*.ckpt`` (``callbacks.checkpoint`` keeps every snapshot).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ganlab-report", description=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("run_dir", type=Path, help="a run's output directory (outputs/train/runs/<date>)")
    p.add_argument("--out", type=Path, default=None, help="where to write the PNGs (default RUN_DIR/report)")
    p.add_argument("--columns", type=int, default=8, help="latents per timeline row")
    p.add_argument("--rows", type=int, default=12, help="at most this many checkpoints in the timeline")
    args = p.parse_args(argv)
    if args.columns < 1 or args.rows < 2:
        p.error("--columns must be >= 1 and --rows >= 2")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from ganlab.doctor.record import diagnosis, is_run, sweep_table
    from ganlab.run.plots import write_report

    if (
        args.run_dir.is_dir()
        and not is_run(args.run_dir)
        and any(p.is_dir() and is_run(p) for p in args.run_dir.iterdir())
    ):
        print(sweep_table(args.run_dir))  # a folder of runs: the diagnosis as one table
        return 0
    try:
        written = write_report(args.run_dir, args.out, args.columns, args.rows)
    except FileNotFoundError as e:
        print(f"ganlab-report: {e}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    print(diagnosis(args.run_dir))
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())
