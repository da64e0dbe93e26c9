"""How many BLAS threads a run uses: the cores this process may use, or what the caller asks.

The cores a process may use are the fewest of

* its CPU affinity (``os.sched_getaffinity``: ``taskset``, a batch scheduler's binding);
* its cgroup's CPU quota, rounded up (cgroup v2 ``cpu.max`` = ``"QUOTA PERIOD"``, cgroup v1
  ``cpu.cfs_quota_us / cpu.cfs_period_us``; a container's ``--cpus``), over every cgroup
  from the process's own up to the root.

Nothing else: how busy the machine is (its load average, other users' niced jobs) does not
change the count — a low-priority job yields the cores by itself, and a user who shares a
machine says so with ``threads``. XLA's own threads (the Hessian-vector products) are
not limited here.
"""

from __future__ import annotations

import math
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from ..errors import ConfigError
from ..linalg.sketch import BLAS_CONTROLLER

#: the cgroup file systems and the process's membership (parameters of :func:`usable_cores` for tests)
CGROUP_ROOT = Path("/sys/fs/cgroup")
SELF_CGROUP = Path("/proc/self/cgroup")


def usable_cores(*, affinity: set[int] | None = None, cgroup_root: Path = CGROUP_ROOT,
                 self_cgroup: Path = SELF_CGROUP) -> int:
    """The cores this process may use: its affinity, capped by its cgroups' CPU quotas (at least 1).

    ``affinity``: the CPU set (None: ``os.sched_getaffinity(0)``, else ``os.cpu_count()``);
    ``cgroup_root``, ``self_cgroup``: where the cgroup files are read (tests pass fake ones)."""
    if affinity is None:
        try:
            affinity = os.sched_getaffinity(0)
        except (AttributeError, OSError):  # not Linux
            affinity = set(range(os.cpu_count() or 1))
    cores = max(1, len(affinity))
    quota = cgroup_cpu_quota(cgroup_root=cgroup_root, self_cgroup=self_cgroup)
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota - 1e-9)))
    return cores


def cgroup_cpu_quota(*, cgroup_root: Path = CGROUP_ROOT, self_cgroup: Path = SELF_CGROUP) -> float | None:
    """The smallest CPU quota (in cores, e.g. 1.5) of the process's cgroups and their parents,
    v2 and v1 hierarchies alike; None when no quota is set or nothing can be read."""
    try:
        lines = Path(self_cgroup).read_text().splitlines()
    except OSError:
        return None
    root = Path(cgroup_root)
    quotas = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # cgroup v2: one unified hierarchy
            quotas += [_v2_quota(d / "cpu.max") for d in _up_to_root(root, path)]
        elif "cpu" in controllers.split(","):  # cgroup v1: the cpu controller's own hierarchy
            base = root / controllers
            if not base.is_dir():
                base = root / "cpu"
            quotas += [_v1_quota(d) for d in _up_to_root(base, path)]
    quotas = [q for q in quotas if q is not None]
    return min(quotas) if quotas else None


def resolve_threads(threads: int | None) -> int:
    """``threads`` checked (a whole number from 1 to the machine's logical CPUs; :class:`ConfigError`
    naming ``threads``), or :func:`usable_cores` when None."""
    if threads is None:
        return usable_cores()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError.invalid("threads", threads, "must be a whole number of threads, 1 or more")
    cpus = os.cpu_count() or 1
    if threads > cpus:   # more threads than the machine has CPUs only contend for them
        raise ConfigError.invalid("threads", threads, f"this machine has {cpus} logical CPUs: give 1..{cpus} "
                                                      f"(default: the cores this process may use, {usable_cores()})")
    return threads


@contextmanager
def blas_threads(threads: int):
    """Within this block NumPy/SciPy's BLAS and LAPACK run on ``threads`` threads, and so do
    PyTorch's intra-op threads where PyTorch is already imported (a module's products)."""
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None and hasattr(torch, "get_num_threads") else None
    with BLAS_CONTROLLER.limit(limits=int(threads), user_api="blas"):
        if before is not None:
            torch.set_num_threads(int(threads))
        try:
            yield
        finally:
            if before is not None:
                torch.set_num_threads(before)


def _up_to_root(base: Path, path: str):
    """``base/path`` and each of its parents up to ``base`` (a quota of a parent binds its children)."""
    rel = Path(path.strip().lstrip("/"))
    while True:
        yield base / rel
        if rel == rel.parent:
            return
        rel = rel.parent


def _v2_quota(path: Path) -> float | None:
    try:
        fields = path.read_text().split()
    except OSError:
        return None
    if len(fields) < 1 or fields[0] == "max":
        return None
    try:
        quota, period = float(fields[0]), float(fields[1]) if len(fields) > 1 else 100_000.0
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _v1_quota(folder: Path) -> float | None:
    try:
        quota = float((folder / "cpu.cfs_quota_us").read_text())
        period = float((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None
