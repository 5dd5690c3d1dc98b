"""Thread counts from the CPUs this process may use, not the machine's core count.

torch (OpenMP, oneDNN) and the BLAS library each start one worker thread a core of the machine by default,
and GNU OpenMP's workers spin while they wait for work. On a machine shared with other jobs the spinning
threads take the cores that the work needs. Measured on a shared 2-core machine, 60 forward and backward
passes of the demo network on 8 images: with other jobs' load (about 4) 27.2 s with torch's two default
threads, 4.1 s with ``OMP_WAIT_POLICY=PASSIVE``, 4.1 s with one thread; beside two more busy processes
172 s, 5.4 s and 9.7 s. The spinning wait, not the thread count, is the cause.

:func:`configure_threads` therefore chooses ``min(len(os.sched_getaffinity(0)), cgroup CPU quota)`` threads
and passive waiting, unless the user set the usual variables: ``OMP_NUM_THREADS`` (also ``MKL_NUM_THREADS``,
``OPENBLAS_NUM_THREADS``) for the count and ``OMP_WAIT_POLICY`` for the waiting. It must run before torch or
numpy is imported for the waiting policy and the BLAS count to take effect; the command-line entry points
call it first.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

__all__ = ["THREAD_VARIABLES", "available_cpus", "cgroup_cpu_limit", "configure_threads"]

#: the variables that set a thread count, read in this order; the first that is set wins
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (quota / period), None when unlimited or unknown.
    Reads cgroup v2 ``cpu.max`` and, failing that, v1 ``cpu/cpu.cfs_quota_us`` and ``cpu.cfs_period_us``."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None


def available_cpus(root: Path = Path("/sys/fs/cgroup")) -> int:
    """The CPUs this process may use: its affinity mask, capped by its cgroup's quota (rounded up), >= 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        cpus = min(cpus, math.ceil(limit))
    return max(1, cpus)


def _requested(environ) -> int | None:
    for name in THREAD_VARIABLES:
        value = environ.get(name, "").strip().split(",")[0]
        if value:
            try:
                count = int(value)
            except ValueError:
                continue
            if count >= 1:
                return count
    return None


def configure_threads(environ=None, *, root: Path = Path("/sys/fs/cgroup")) -> int:
    """Set the thread count and passive waiting for this process and return the count.

    A count the user set in ``THREAD_VARIABLES`` is kept (and copied to the others not set); else
    :func:`available_cpus`. ``OMP_WAIT_POLICY`` becomes ``PASSIVE`` unless set. When torch is already
    imported its intra-op count is set too."""
    environ = os.environ if environ is None else environ
    count = _requested(environ) or available_cpus(root)
    for name in THREAD_VARIABLES:
        environ.setdefault(name, str(count))
    environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    torch = sys.modules.get("torch")
    if torch is not None and environ is os.environ:
        torch.set_num_threads(count)
    return count


def configure_threads_for_command() -> int | None:
    """:func:`configure_threads` when this process runs a package as a command (``python -m reports``,
    ``empirical``, ``benchmarks``): while ``-m`` imports the package, ``sys.argv[0]`` is ``"-m"``. An
    ``import reports`` in a user's program leaves the process's settings alone (None)."""
    if sys.argv[:1] == ["-m"]:
        return configure_threads()
    return None
