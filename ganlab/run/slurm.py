"""What ganlab needs to know about a SLURM job, from the variables SLURM sets (no SLURM import)."""

from __future__ import annotations

import logging
import os
import subprocess

log = logging.getLogger(__name__)


def job_id() -> str | None:
    """This SLURM job's id as ``scontrol`` names it (``<array job>_<task>`` for array tasks);
    None outside SLURM."""
    job = os.environ.get("SLURM_ARRAY_JOB_ID", os.environ.get("SLURM_JOB_ID"))
    task = os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{job}_{task}" if job and task else job


def restart_count() -> int:
    """How many times SLURM requeued this job (0 for its first attempt, and outside SLURM)."""
    try:
        return int(os.environ.get("SLURM_RESTART_COUNT", 0))
    except ValueError:
        return 0


def requeue() -> bool:
    """``scontrol requeue`` this job (as Lightning's ``SLURMEnvironment(auto_requeue=True)``
    does); the requeued job keeps its id, so its run directory and run lock."""
    job = job_id()
    try:
        result = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        log.warning("could not requeue SLURM job %s (%s): resume it with ckpt_path=last", job, e)
        return False
    ok = result.returncode == 0
    log.warning("requeued SLURM job %s: %s", job, "ok" if ok else result.stderr.strip())
    return ok
