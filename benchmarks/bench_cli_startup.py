"""How fast the command line answers ``--help``: whole processes, as a user types them.

    python3 benchmarks/bench_cli_startup.py [--repeat N]

Times ``hessian-rank --help``, ``hessian-rank run --help`` and ``hessian-rank --version``
(the console script when it is on PATH, else ``python3 -m hessrank.cli``), next to two
baselines measured in the same run, interleaved: a bare interpreter (``python3 -c pass``,
the floor) and ``python3 -c "import jax"`` (what every help would cost if building the
parser loaded the engine). Prints each median wall and CPU time (user + system of the
child: less sensitive to the load of the machine), the ratio to the bare interpreter, and whether the
target of one second is met. OpenBLAS pins are unset in the timed processes only; the
machine may be shared (the load average is printed).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time

PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
TARGET_S = 1.0


def _cpu_model() -> str:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _report import cpu_model

    return cpu_model()


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _time(cmd: list[str], env: dict) -> tuple[float, float]:
    """Wall and CPU seconds of one process running ``cmd`` to its end."""
    t0, c0 = time.perf_counter(), _children_cpu()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0, _children_cpu() - c0


def main(argv=None) -> int:
    """Time the help commands against the baselines; exit status 1 if a help misses the target."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error(f"--repeat {args.repeat}: give a whole number of runs >= 1")
    env = {k: v for k, v in os.environ.items() if k not in PINS}
    script = shutil.which("hessian-rank")
    cli = [script] if script else [sys.executable, "-m", "hessrank.cli"]
    cases = {
        "python3 -c pass (baseline)": [sys.executable, "-c", "pass"],
        "python3 -c 'import jax' (reference)": [sys.executable, "-c", "import jax"],
        "hessian-rank --help": [*cli, "--help"],
        "hessian-rank run --help": [*cli, "run", "--help"],
        "hessian-rank --version": [*cli, "--version"],
    }
    print(f"CPU: {_cpu_model()}; {os.cpu_count()} cores; Python {platform.python_version()}; "
          f"command line: {' '.join(cli)}; load average {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
          "(a shared machine)", flush=True)
    for cmd in cases.values():      # warm the file system cache once; not timed
        _time(cmd, env)
    wall = {name: [] for name in cases}
    cpu = {name: [] for name in cases}
    for _ in range(args.repeat):
        for name, cmd in cases.items():
            w, c = _time(cmd, env)
            wall[name].append(w)
            cpu[name].append(c)
    base = statistics.median(wall["python3 -c pass (baseline)"])
    missed = []
    print(f"{'command':<38}{'wall (median)':>14}{'CPU (median)':>14}{'× bare python':>15}")
    for name in cases:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        print(f"{name:<38}{w:>12.3f} s{c:>12.3f} s{w / base:>14.1f}×")
        if name.startswith("hessian-rank") and w >= TARGET_S:
            missed.append(name)
    print(f"medians of {args.repeat}; target: every hessian-rank line under {TARGET_S:.0f} s wall — "
          + ("met" if not missed else f"MISSED by {', '.join(missed)}")
          + f"; load average at the end {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
