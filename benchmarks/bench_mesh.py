"""The matrix-free engine on a JAX mesh against the host's NumPy path, whole processes, this machine.

    python3 benchmarks/bench_mesh.py                      # p = 4560, 110,100 and 535,500
    python3 benchmarks/bench_mesh.py --sizes 4560,16700   # smaller sizes only
    python3 benchmarks/bench_mesh.py --baseline-src /path/to/other/checkout/src
    python3 benchmarks/bench_mesh.py --sizes 110100,535500 --one-device-up-to 110100 --report

For each size (Gaussian n = 100, d = 64, mse, ``--method matrix-free``; p = 4560: widths 40,40,
K 10; p = 16,700: widths 100,100, K 3; p = 110,100: widths 300,300, K 3; p = 535,500: widths
700,700, K 1) it runs, each as fresh processes:

1. ``default``: ``hessian-rank run`` as it is (one process of CPUs: the basis in host memory);
2. ``baseline`` (with ``--baseline-src``): the same command on another checkout of the package
   (e.g. the previous release): its time over the default's says whether the default became
   slower (goal: the default within 10 %);
3. ``1 device``: ``--devices 1``, the basis as a JAX array on one device: ratio to ``default``;
4. ``2 processes``: ``--coordinator 127.0.0.1:PORT --num-processes 2 --process-id 0|1`` on this
   host, the basis sharded over both processes' CPU devices: each process's peak memory against
   the single-process peak (goal: at most 60 %), wall time of the pair.

Wall time includes Python and JAX start-up; peak memory is each child's own peak resident set
(``os.wait4``); CPU time (user + system) is printed beside the wall time because a shared
machine inflates wall times (the load average is printed before each size). Every variant's
ranks must equal the default's (and, at p = 535,500, the certified 2862 / 64 / 2799 of
H_L / H_o / H_F); exit status 1 otherwise. OpenBLAS pins (``OPENBLAS_CORETYPE``,
``OPENBLAS_L2_SIZE``) are unset in the children only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _report import command_line, cpu_model, markdown_table, write_report  # noqa: E402

PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
SIZES = {4560: ("40,40", 10), 16_700: ("100,100", 3), 110_100: ("300,300", 3), 535_500: ("700,700", 1)}
EXPECTED = {535_500: {"H_L": 2862, "H_o": 64, "H_F": 2799}}


def _env(src: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in PINS}
    env["HESSRANK_COMPILE_CACHE"] = "off"
    env["JAX_PLATFORMS"] = env.get("JAX_PLATFORMS", "cpu")
    env.pop("XLA_FLAGS", None)
    if src:
        env["PYTHONPATH"] = src
    return env


def _cmd(p: int, extra: list[str]) -> list[str]:
    units, K = SIZES[p]
    return [sys.executable, "-m", "hessrank.cli", "run", "--dataset", "gaussian", "--n", "100", "--dim", "64",
            "--units", units, "--K", str(K), "--loss", "mse", "--method", "matrix-free", "--json", *extra]


def timed(cmds: list[list[str]], src: str | None = None) -> list[tuple[float, float, int, str]]:
    """Start ``cmds`` together; per command (wall s, CPU s, peak RSS bytes, stdout), each reaped by
    ``os.wait4`` (the child's own CPU time and peak memory)."""
    outs = [tempfile.TemporaryFile("w+") for _ in cmds]
    errs = [tempfile.TemporaryFile("w+") for _ in cmds]
    t = time.perf_counter()
    procs = [subprocess.Popen(c, stdout=o, stderr=e, text=True, env=_env(src)) for c, o, e in zip(cmds, outs, errs)]
    results = {}
    while len(results) < len(procs):
        pid, status, usage = os.wait4(-1, 0)
        for i, proc in enumerate(procs):
            if proc.pid == pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                results[i] = (time.perf_counter() - t, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024)
    out = []
    for i, proc in enumerate(procs):
        outs[i].seek(0)
        errs[i].seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmds[i])}\n{errs[i].read()[-2000:]}")
        out.append((*results[i], outs[i].read()))
        outs[i].close()
        errs[i].close()
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


#: the rows of the report: p, variant, wall s, CPU s, peak MiB, time ratio, memory ratio, ranks
ROWS: list[list] = []


def _row(label, wall, cpu, rss, ranks, ratio="", mem="", *, p: int = 0) -> None:
    r = f"{ranks['H_L']} / {ranks['H_o']} / {ranks['H_F']}"
    ROWS.append([f"{p:,}", label, f"{wall:.1f}", f"{cpu:.1f}", f"{rss / 2**20:.0f}", ratio, mem, r])
    print(f"{label:30}{wall:>9.1f}{cpu:>9.1f}{rss / 2**20:>10.0f}{ratio:>12}{mem:>12}   {r}", flush=True)


def bench(p: int, baseline: str | None, *, one_device: bool = True) -> bool:
    print(f"\np = {p:,} (widths {SIZES[p][0]}, K {SIZES[p][1]}); load {_load()}", flush=True)
    print(f"{'':30}{'wall s':>9}{'CPU s':>9}{'peak MiB':>10}{'time ratio':>12}{'mem ratio':>12}   "
          "ranks H_L / H_o / H_F", flush=True)
    ok = True
    [(wall, cpu, rss, out)] = timed([_cmd(p, [])])
    ref = json.loads(out)
    ranks = ref["ranks"]
    base_wall, base_rss = wall, rss
    label = f"default ({ref['devices']} devices)" if ref.get("devices") else "default (host NumPy)"
    _row(label, wall, cpu, rss, ranks, p=p)
    if p in EXPECTED and (ranks != EXPECTED[p] or not ref["certified"]):
        print(f"  the default's ranks differ from the certified {EXPECTED[p]}")
        ok = False
    if baseline:
        [(w, c, r, o)] = timed([_cmd(p, [])], baseline)
        res = json.loads(o)
        _row("baseline checkout", w, c, r, res["ranks"], f"{w / base_wall:.2f}", f"{r / base_rss:.2f}", p=p)
        ok &= res["ranks"] == ranks
    if one_device:
        [(w, c, r, o)] = timed([_cmd(p, ["--devices", "1"])])
        res = json.loads(o)
        _row("1 device (JAX arrays)", w, c, r, res["ranks"], f"{w / base_wall:.2f}", f"{r / base_rss:.2f}", p=p)
        ok &= res["ranks"] == ranks and res["certified"]
    port = _free_port()
    pair = timed([_cmd(p, ["--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)])
                  for i in (0, 1)])
    res = json.loads(pair[0][3])
    for i, (w, c, r, _) in enumerate(pair):
        _row(f"2 processes: process {i}", w, c, r, res["ranks"], f"{w / base_wall:.2f}", f"{r / base_rss:.2f}", p=p)
    ok &= res["ranks"] == ranks and res["certified"] and pair[1][3] == ""
    print(f"  2 processes: peak memory per process {max(r for _, _, r, _ in pair) / base_rss:.0%} of the single "
          f"process's (goal at most 60 %); time {max(w for w, *_ in pair) / base_wall:.2f}× the default", flush=True)
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="4560,110100,535500",
                    help=f"comma-separated p, from {', '.join(map(str, SIZES))}")
    ap.add_argument("--baseline-src", default=None, help="the src folder of another checkout to compare the default "
                                                         "with")
    ap.add_argument("--one-device-up-to", type=int, default=None, metavar="P",
                    help="run the 1-device variant only for sizes up to P (default: every size)")
    ap.add_argument("--report", action="store_true", help="write the table to docs/performance/mesh.md")
    args = ap.parse_args()
    started = dt.datetime.now(dt.UTC)
    sizes = [int(s) for s in args.sizes.split(",")]
    bad = [s for s in sizes if s not in SIZES]
    if bad:
        ap.error(f"--sizes {bad[0]}: not one of {', '.join(map(str, SIZES))}")
    print(f"{cpu_model()}; {os.cpu_count()} cores; Python {platform.python_version()}; load {_load()}")
    limit = args.one_device_up_to
    ok = all([bench(p, args.baseline_src, one_device=limit is None or p <= limit) for p in sizes])
    print("\nall ranks agree" if ok else "\nRANKS DIFFER (see above)")
    if args.report and ok:
        write_report("mesh", command_line(__file__), markdown_table(
            ["p", "variant", "wall s", "CPU s", "peak MiB", "time / default", "memory / default",
             "ranks H_L / H_o / H_F"], ROWS, "llrrrrrl"), started=started, notes=(
            "Each variant is a fresh `hessian-rank run --method matrix-free` process (Gaussian n 100, d 64, mse). "
            "*default*: one process, the basis in host memory (NumPy); *1 device*: `--devices 1`, the basis as a "
            "JAX array; *2 processes*: `--coordinator 127.0.0.1:PORT --num-processes 2 --process-id 0|1` on this "
            "host, started together, the basis rows' p columns split between the processes and each process's "
            "products over its half of the samples. Peak memory is each process's own peak resident set; the "
            "memory ratio is against the single-process default of the same run. OpenBLAS pins unset in the "
            "children only."))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
