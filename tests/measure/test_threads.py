"""BLAS threads: the cores a process may use (affinity, cgroup quotas), or what the caller asks —
never the machine's load average."""

import os
import subprocess
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from hessrank import ConfigError, RunConfig, run
from hessrank.measure import matrix_free_ranks
from hessrank.measure.threads import cgroup_cpu_quota, resolve_threads, usable_cores


def _blas_threads_now() -> int:
    return min(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


def _cgroups(tmp_path, membership: str, files: dict[str, str]):
    (tmp_path / "self").write_text(membership)
    for rel, text in files.items():
        path = tmp_path / "fs" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return {"cgroup_root": tmp_path / "fs", "self_cgroup": tmp_path / "self"}


def test_cgroup_v2_quota_of_the_process_and_its_parents(tmp_path):
    where = _cgroups(tmp_path, "0::/jobs/job7\n", {"jobs/job7/cpu.max": "max 100000\n",
                                                   "jobs/cpu.max": "250000 100000\n",
                                                   "cpu.max": "max 100000\n"})
    assert cgroup_cpu_quota(**where) == pytest.approx(2.5)
    assert usable_cores(affinity=set(range(8)), **where) == 3        # 2.5 cores: three threads
    assert usable_cores(affinity={0, 1}, **where) == 2               # the affinity is smaller


def test_cgroup_v1_quota_and_no_quota(tmp_path):
    where = _cgroups(tmp_path, "4:memory:/x\n3:cpu,cpuacct:/docker/abc\n",
                     {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "50000\n",
                      "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
                      "cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"})
    assert cgroup_cpu_quota(**where) == pytest.approx(0.5)
    assert usable_cores(affinity=set(range(4)), **where) == 1        # half a core: one thread
    (tmp_path / "none").mkdir()
    none = _cgroups(tmp_path / "none", "0::/\n", {"cpu.max": "max 100000\n"})
    assert cgroup_cpu_quota(**none) is None
    assert usable_cores(affinity=set(range(6)), **none) == 6
    assert cgroup_cpu_quota(cgroup_root=tmp_path / "absent", self_cgroup=tmp_path / "absent") is None


def test_affinity_of_a_real_process():
    """``taskset`` binds a child to one core: it counts one (the reference is the kernel's own binding)."""
    code = "from hessrank.measure.threads import usable_cores; print(usable_cores())"
    out = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code], capture_output=True, text=True,
                         env=os.environ, check=True)
    assert out.stdout.strip() == "1"
    assert usable_cores() == min(len(os.sched_getaffinity(0)), usable_cores(affinity=os.sched_getaffinity(0)))


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True, os.cpu_count() + 1])
def test_bad_threads_are_refused_naming_the_argument(bad):
    with pytest.raises(ConfigError, match="threads"):
        resolve_threads(bad)
    assert resolve_threads(os.cpu_count()) == os.cpu_count()   # every CPU of the machine may be asked for


def test_load_average_does_not_change_the_threads(problem, monkeypatch):
    """A machine whose load average far exceeds its cores (niced jobs count there) still runs
    on every usable core; ``threads`` sets the count, and the result records it."""
    monkeypatch.setattr(os, "getloadavg", lambda: (500.0, 500.0, 500.0))
    model, lossf, theta, X, Y = problem("tanh", "mse", False)
    seen = []
    res = matrix_free_ranks(model, lossf, theta, X, Y, observe=lambda *a: seen.append(_blas_threads_now()))
    assert res.threads == usable_cores()
    assert seen == [usable_cores()] * 3
    seen.clear()
    res = matrix_free_ranks(model, lossf, theta, X, Y, threads=1, observe=lambda *a: seen.append(_blas_threads_now()))
    assert res.threads == 1 and seen == [1, 1, 1]


def test_run_records_its_threads():
    cfg = RunConfig(dataset="gaussian", n=12, dim=4, units=(3,), K=2, method="matrix-free")
    result = run(cfg, threads=1)
    assert result.threads == 1 and result.to_dict()["threads"] == 1
    assert run(cfg).threads == usable_cores()
    with pytest.raises(ConfigError, match="threads"):
        run(cfg, threads=0)
    assert np.isfinite(result.ranks["H_L"].tol)
