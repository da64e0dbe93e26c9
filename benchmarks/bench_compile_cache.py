"""Compilation paid once: a width sweep with a cold and a warm compilation cache.

    python3 benchmarks/bench_compile_cache.py [--repeat N] [--widths 4:56:4] [-- extra sweep options]

Runs ``hessian-rank sweep width --dataset digits --dim 16 --K 10 --n 100 --widths 4:56:4``
as whole processes, each into its own fresh ``--out`` folder (nothing is resumed):
"cold" with an empty ``HESSRANK_COMPILE_CACHE`` folder, then "warm" with the folder the
cold run filled, interleaved (cold, warm, cold, warm, …; a new cache folder per pair).
Prints each wall time, the medians, the ratio cold / warm, and whether the stored rows
(ranks, predictions) are identical. OpenBLAS pins are unset in the timed processes only;
the machine may be shared (the load average is printed).
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
RANK_COLUMNS = ("H_L", "H_o", "H_F")


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _sweep(cache: str, out: str, widths: str, extra: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system: less sensitive to the load of the machine) of one sweep process."""
    env = {k: v for k, v in os.environ.items() if k not in PINS}
    env["HESSRANK_COMPILE_CACHE"] = cache
    cmd = [sys.executable, "-m", "hessrank.cli", "sweep", "width", "--dataset", "digits", "--dim", "16", "--K", "10",
           "--n", "100", "--widths", widths, "--out", out, *extra]
    t0, c0 = time.perf_counter(), _cpu()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0, _cpu() - c0


def _rows(out: str) -> list[dict]:
    (path,) = list(Path(out).rglob("*.csv"))
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    keep = [c for c in rows[0] if c in ("width", *RANK_COLUMNS) or c.startswith(("pred", "H_"))]
    keep = [c for c in keep if "second" not in c and "time" not in c and "method" not in c and "gap" not in c
            and "tol" not in c]
    return [{c: r[c] for c in keep} for r in rows]


def main(argv=None) -> int:
    """Time the sweep cold and warm; exit status 1 if the rows differ."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--widths", default="4:56:4")
    ap.add_argument("extra", nargs="*")
    args = ap.parse_args(argv)
    print(f"width sweep --dataset digits --dim 16 --K 10 --n 100 --widths {args.widths} {' '.join(args.extra)}; "
          f"{os.cpu_count()} cores; load average {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
          "(a shared machine)", flush=True)
    cold, warm, rows, cpu = [], [], [], {"cold": [], "warm": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            cache = os.path.join(tmp, f"cache{i}")
            for kind, times in (("cold", cold), ("warm", warm)):
                out = os.path.join(tmp, f"{kind}{i}")
                wall, used = _sweep(cache, out, args.widths, args.extra)
                times.append(wall)
                cpu[kind].append(used)
                rows.append(_rows(out))
                print(f"  {kind} {wall:.1f} s wall, {used:.1f} s CPU", flush=True)
    same = all(r == rows[0] for r in rows)
    c, w = statistics.median(cold), statistics.median(warm)
    cc, cw = statistics.median(cpu["cold"]), statistics.median(cpu["warm"])
    print(f"cold cache {c:.1f} s, warm cache {w:.1f} s (medians of {args.repeat}): cold / warm = {c / w:.2f}x; "
          f"CPU time {cc:.1f} s against {cw:.1f} s: {cc / cw:.2f}x; "
          f"identical rows: {same}; load average at the end {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
