"""Speed and size, in one run: of `hessian-rank run`, whole processes, this machine.

    python3 benchmarks/bench_speed.py [--skip-535k] [--skip-sweep]

1. p = 4560 (Gaussian n = 100, d = 64, widths 40,40, K = 10, mse): the naive dense approach
   (``naive.py``: ``jax.hessian``, explicit GGN, SVD ``matrix_rank``) against ``run --method
   dense``, ``--method matrix-free`` and the default (``auto``), each with a cold
   compilation cache (an empty folder) and warm (the folder the cold run filled); ratios
   naive / ours.
2. p = 110,100 (widths 300,300, K = 3): ``run`` (default method) wall time and peak memory.
3. p = 535,500 (widths 700,700, K = 1): the same (about 20 minutes; ``--skip-535k``).
4. A width sweep (digits, d = 16, widths 4:56:4) with a cold and a warm cache
   (``bench_compile_cache.py --repeat 1``; ``--skip-sweep``).

Every timed command is a fresh process; its wall time includes Python and JAX start-up,
its peak memory is the child's own peak resident set (``wait4``), and its CPU time
(user + system) is printed beside the wall time because the machine may be shared (the
load average is printed before each step). OpenBLAS pins (``OPENBLAS_CORETYPE``,
``OPENBLAS_L2_SIZE``) are unset in the children only, never in tests or CI. Exit status 1
if any ranks differ from the naive approach's or from the predictions.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _report import command_line, markdown_table, write_report  # noqa: E402

PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _env(cache: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in PINS}
    env["HESSRANK_COMPILE_CACHE"] = cache or "off"
    return env


def timed(cmd: list[str], cache: str | None = None) -> tuple[float, float, int, str]:
    """(wall s, CPU s, peak RSS bytes, stdout) of one fresh process: reaped by ``os.wait4``,
    which returns the child's own CPU time and peak memory."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=_env(cache))
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{err.read()[-2000:]}")
        return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, out.read()


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _run_cmd(spec: dict, method: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "hessrank.cli", "run", "--dataset", "gaussian", "--n", "100", "--dim", "64",
           "--units", spec["units"], "--K", str(spec["K"]), "--loss", "mse", "--json"]
    return cmd + (["--method", method] if method else [])


def small(ok: list[bool], table: list[list]) -> None:
    spec = {"units": "40,40", "K": 10}
    print(f"\n[1] p = 4560 (Gaussian n 100, d 64, widths 40,40, K 10, mse); load {_load()}", flush=True)
    common = ["--dataset", "gaussian", "--n", "100", "--dim", "64", "--units", "40,40", "--K", "10", "--loss", "mse"]
    wall, cpu, rss, out = timed([sys.executable, str(HERE / "naive.py"), *common])
    naive = json.loads(out)
    print(f"{'':34}{'wall s':>8}{'CPU s':>8}{'peak MiB':>10}{'naive/ours':>12}   ranks H_L / H_o / H_F   method")
    r = naive["ranks"]
    print(f"{'naive (jax.hessian, SVD)':34}{wall:>8.1f}{cpu:>8.1f}{rss / 2**20:>10.0f}{'':>12}   "
          f"{r['H_L']} / {r['H_o']} / {r['H_F']}", flush=True)
    naive_wall = wall
    table.append(["p = 4560, naive (`naive.py`: `jax.hessian`, explicit GGN, SVD)", f"{wall:.1f} s", f"{cpu:.1f} s",
                  f"{rss / 2**30:.2f} GiB", "", f"{r['H_L']} / {r['H_o']} / {r['H_F']}"])
    for method in ("dense", "matrix-free", None):
        with tempfile.TemporaryDirectory() as cache:
            for state in ("cold", "warm"):
                wall, cpu, rss, out = timed(_run_cmd(spec, method), cache)
                res = json.loads(out)
                r = res["ranks"]
                same = r == naive["ranks"]
                ok.append(same)
                name = f"hessrank {method or 'default (auto)'}, {state} cache"
                print(f"{name:34}{wall:>8.1f}{cpu:>8.1f}{rss / 2**20:>10.0f}{naive_wall / wall:>11.1f}×   "
                      f"{r['H_L']} / {r['H_o']} / {r['H_F']}{'' if same else ' (DIFFERENT)'}   {res['method']}",
                      flush=True)
                table.append([f"p = 4560, `{name.removeprefix('hessrank ')}`", f"{wall:.1f} s", f"{cpu:.1f} s",
                              f"{rss / 2**30:.2f} GiB", f"{naive_wall / wall:.1f}×",
                              "same" if same else f"{r['H_L']} / {r['H_o']} / {r['H_F']} (different)"])


def large(units: str, K: int, ok: list[bool], table: list[list]) -> None:
    spec = {"units": units, "K": K}
    print(f"\n[{'2' if units == '300,300' else '3'}] widths {units}, K {K} (Gaussian n 100, d 64, mse), default "
          f"method, cold compilation cache (an empty folder); load {_load()}", flush=True)
    with tempfile.TemporaryDirectory() as cache:
        wall, cpu, rss, out = timed(_run_cmd(spec, None), cache)
    res = json.loads(out)
    r, pred = res["ranks"], res["predictions"]
    same = all(r[m] == pred[m] for m in r) and res["certified"] is not False
    ok.append(same)
    print(f"p = {res['p']}: {wall:.1f} s wall, {cpu:.1f} s CPU, peak {rss / 1e9:.2f} GB; ranks "
          f"{r['H_L']} / {r['H_o']} / {r['H_F']} (predicted {pred['H_L']} / {pred['H_o']} / {pred['H_F']}); "
          f"method {res['method']}; certified: {res['certified']}", flush=True)
    table.append([f"p = {res['p']:,} (widths {units}, K {K}), default ({res['method']}), cold cache", f"{wall:.1f} s",
                  f"{cpu:.1f} s", f"{rss / 1e9:.2f} GB", "",
                  f"{r['H_L']} / {r['H_o']} / {r['H_F']}"
                  + (" = predicted, certified" if same else " (NOT as predicted)")])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-535k", action="store_true", help="leave out the p = 535,500 run (about 20 minutes)")
    ap.add_argument("--skip-sweep", action="store_true", help="leave out the width sweep, cold and warm")
    args = ap.parse_args(argv)
    print(f"{os.cpu_count()} cores; OpenBLAS pins unset in the timed processes; load average {_load()}")
    ok: list[bool] = []
    table: list[list] = []
    started = datetime.datetime.now(datetime.UTC)
    small(ok, table)
    large("300,300", 3, ok, table)
    if not args.skip_535k:
        large("700,700", 1, ok, table)
    if not args.skip_sweep:
        print(f"\n[4] the width sweep (digits, d = 16, widths 4:56:4), cold and warm compilation cache; "
              f"load {_load()}", flush=True)
        proc = subprocess.run([sys.executable, str(HERE / "bench_compile_cache.py"), "--repeat", "1"],
                              env=_env(None))
        ok.append(proc.returncode == 0)
    print(f"\nall ranks as expected: {all(ok)}")
    write_report("speed", command_line(__file__, argv), markdown_table(
        ["what", "wall", "CPU", "peak", "naive / ours", "ranks H_L / H_o / H_F"], table, "lrrrrl"),
        started=started, notes="Whole fresh processes: wall time including Python and JAX start-up, CPU = user + "
        "system of the child, peak = the child's own peak resident set. The width sweep, cold and warm, is "
        "printed by `bench_compile_cache.py` (run by this script) and not part of the table.")
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
