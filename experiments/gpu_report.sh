#!/usr/bin/env bash
# The GPU figures (python -m ganlab.gpu_report) on a machine lent for minutes, which has torch,
# lightning, torchmetrics, torchvision and pytest but not hydra-core/omegaconf, and no network:
#
#   bash experiments/gpu_report.sh prepare   # here: .whl/ (hydra-core, omegaconf, antlr4: pure Python)
#                                            # and .fid/a, .fid/b: fid-helper's default_1.pt in halves
#   device run 1: carry [".whl", ".fid/a"]   command: bash experiments/gpu_report.sh stage
#   device run 2: carry [".whl", ".fid/b"]   command: bash experiments/gpu_report.sh run
#
# Two runs because one carries at most 64 MiB and the FID network is 87 MB. Run 1 keeps its half
# in /tmp, installs the wheels into /tmp/site and runs the tests that need CUDA (a minute).
# Run 2 joins the halves (sha1 checked) and writes gpu_report.{json,md,log} into $OUT; each row
# is saved as it finishes, so a run stopped by its time limit (GPU_REPORT_LIMIT_S, default 470)
# still returns the rows before it (timeout -k: ganlab takes the first SIGTERM as a preemption, saves
# a checkpoint and stops that run, and the report would go on to the next). The working files
# (4,096 PNGs, runs) stay in /tmp/gpu_report, out of $OUT.
# `bash experiments/gpu_report.sh stylegan2` (carry [".whl"], one run) measures the StyleGAN2 rows
# alone, keeping the DCGAN rows of the committed experiments/gpu_report.json.
set -euo pipefail
cd "$(dirname "$0")/.."
SHA1=a16e4d89c0ecbc17a915dd76ea9e41211aa82562
out=${OUT:-outputs}

wheels() {  # hydra-core, omegaconf, antlr4 from .whl into /tmp/site, ganlab from this checkout
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
}

report() {  # LIMIT_S ARGS...: the report into $out under a time limit, then its log's end and table
  local limit=$1 rc=0
  shift
  mkdir -p "$out"
  # -k: a run's first SIGTERM is a preemption to ganlab (checkpoint, stop); the report would go on
  timeout -k 20 "$limit" python3 -m ganlab.gpu_report --out "$out" --work /tmp/gpu_report "$@" \
    > "$out/gpu_report.log" 2>&1 || rc=$?
  tail -c 6000 "$out/gpu_report.log"
  cat "$out/gpu_report.md" 2>/dev/null || true
  return "$rc"
}
case "${1:-}" in
  prepare)
    py=${PYTHON:-.venv/bin/python}
    versions=$("$py" -c 'from importlib.metadata import version as v
print(*(f"{p}=={v(p)}" for p in ("hydra-core", "omegaconf", "antlr4-python3-runtime")))')
    rm -rf .whl && "$py" -m pip wheel -q --no-deps -w .whl $versions
    src=$("$py" -c 'from ganlab.metrics.features import fid_helper_path; print(fid_helper_path())')
    mkdir -p .fid && head -c 45000000 "$src" > .fid/a && tail -c +45000001 "$src" > .fid/b
    grep -qxF /.fid/ .git/info/exclude 2>/dev/null || echo /.fid/ >> .git/info/exclude
    ls -l .whl .fid ;;
  stage)
    mkdir -p /tmp/fid && cp .fid/a /tmp/fid/a && ls -l /tmp/fid
    wheels
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    timeout "${GPU_TESTS_LIMIT_S:-120}" python3 -m pytest -q -p no:cacheprovider tests/unit/test_stylegan2.py -k cuda ;;
  run)
    cat /tmp/fid/a .fid/b > /tmp/fid/default_1.pt
    echo "$SHA1  /tmp/fid/default_1.pt" | sha1sum -c -
    export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1  # the wheels: installed by stage
    report "${GPU_REPORT_LIMIT_S:-470}" --feature /tmp/fid/default_1.pt ;;
  stylegan2)  # the StyleGAN2 rows again (no FID network: carry [".whl"]); the DCGAN rows are kept
    # from the committed experiments/gpu_report.json, with their date
    wheels
    mkdir -p "$out" && cp experiments/gpu_report.json "$out/"
    report "${GPU_REPORT_LIMIT_S:-400}" --only stylegan2 ;;
  *)
    echo "usage: bash experiments/gpu_report.sh prepare|stage|run|stylegan2" >&2; exit 2 ;;
esac
