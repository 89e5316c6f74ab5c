"""The run directory: one run at a time, writable from the start, no debris from killed runs."""

from __future__ import annotations

import atexit
import errno
import json
import logging
import os
import re
import socket
from pathlib import Path

from ganlab.run import slurm
from ganlab.utils.errors import RunDirError

log = logging.getLogger(__name__)

# What ganlab's atomic writes leave behind when killed mid-write: ".<name>.tmp<pid>".
_TEMP = re.compile(r"^\..+\.tmp(\d+)$")


def launch_rank() -> int:
    """0 exactly on the process that will be global rank 0, from what the launchers set before
    any process group exists (torchrun's RANK, srun's SLURM_PROCID, Lightning's NODE_RANK and
    LOCAL_RANK); 0 for a plain run."""
    for var in ("RANK", "SLURM_PROCID"):
        if var in os.environ:
            return int(os.environ[var])
    return int(os.environ.get("NODE_RANK", 0)) + int(os.environ.get("LOCAL_RANK", 0))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as e:
        return e.errno == errno.EPERM  # exists, owned by someone else
    return True


class RunLock:
    """``<run dir>/run.lock`` holding the owner's PID and host (and SLURM job and attempt),
    created exclusively. A second process gets an error naming the owner; a lock whose process
    is gone (a killed run on this host), or that an earlier attempt of this same SLURM job left
    (SLURM runs one attempt of a job at a time, so after a requeue on another host the previous
    attempt is gone, even if its host never cleaned up), is taken over. Released when this
    process exits."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / "run.lock"
        self.held = False

    def acquire(self) -> RunLock:
        me = {"pid": os.getpid(), "host": socket.gethostname(), "slurm_job": slurm.job_id(),
              "slurm_attempt": slurm.restart_count()}  # fmt: skip
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    owner = json.loads(self.path.read_text())
                except (OSError, ValueError):
                    owner = {}
                pid, host = owner.get("pid"), owner.get("host")
                earlier_attempt = (
                    bool(me["slurm_job"])
                    and owner.get("slurm_job") == me["slurm_job"]
                    and (owner.get("slurm_attempt", 0) < me["slurm_attempt"])
                )
                if isinstance(pid, int) and not earlier_attempt and (host != me["host"] or _alive(pid)):
                    raise RunDirError(
                        f"run directory '{self.path.parent}' is in use by process {pid} on {host} "
                        "(hydra.run.dir): wait for it, or give this run its own directory "
                        f"(hydra.run.dir=...); if that process is gone, delete the lock file {self.path}"
                    ) from None
                why = (
                    f"was an earlier attempt of SLURM job {me['slurm_job']}" if earlier_attempt else "is gone"
                )
                log.warning(
                    "taking over a stale run lock %s (process %s on %s %s)", self.path, pid, host, why
                )
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self.held = True
            atexit.register(self.release)
            return self
        raise RunDirError(f"could not take the run lock {self.path}")

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False


def check_writable(dirs: dict[str, str | Path]) -> None:
    """Create each directory (by the setting that names it) and write a probe file in it now,
    rather than fail at the first checkpoint (iteration 1000) or after an evaluation's features
    were computed."""
    for key, d in dirs.items():
        d = Path(d)
        try:
            d.mkdir(parents=True, exist_ok=True)
            probe = d / f".ganlab_write_test{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise RunDirError(
                f"cannot write to '{d}' ({e.strerror}) ({key}): choose a writable location, e.g. "
                f"{key}=/path/with/space, or fix its permissions"
            ) from None


def remove_stale_temps(*dirs: str | Path) -> list[Path]:
    """Delete ``.<name>.tmp<pid>`` files whose writer process is gone (killed mid-write); a
    writer still alive keeps its file. Returns what was removed."""
    removed = []
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            continue
        for p in d.iterdir():
            m = _TEMP.match(p.name)
            if m and p.is_file() and not _alive(int(m.group(1))):
                p.unlink(missing_ok=True)
                removed.append(p)
    if removed:
        log.info("removed %d unfinished temporary file(s) from killed runs: %s", len(removed), removed)
    return removed
