"""Speed of a whole `hessian-rank run` against the naive dense approach.

    python3 benchmarks/bench_dense.py            # p = 4560: n = 100, d = 64, widths 40,40, K = 10, mse

Both sides run as fresh processes on the same machine in this script, one after
the other; it prints each side's wall time (process start included), peak memory
and ranks, and the speed-up. The ranks must be identical.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(cmd):
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - t0, json.loads(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--units", default="40,40")
    ap.add_argument("--K", type=int, default=10)
    ap.add_argument("--loss", default="mse")
    ap.add_argument("--method", default="dense")
    a = ap.parse_args(argv)
    common = ["--dataset", "gaussian", "--n", str(a.n), "--dim", str(a.dim), "--units", a.units, "--K", str(a.K),
              "--loss", a.loss]
    ours_t, ours = timed([sys.executable, "-m", "hessrank.cli", "run", *common, "--method", a.method, "--json"])
    naive_t, naive = timed([sys.executable, str(HERE / "naive.py"), *common])
    print(f"machine: {os.cpu_count()} cores; p = {ours['p']}; n = {a.n}, d = {a.dim}, widths {a.units}, K = "
          f"{a.K}, {a.loss}")
    print(f"{'':10}{'wall s':>10}{'peak MiB':>10}   ranks H_L / H_o / H_F")
    for name, t, res in (("hessrank", ours_t, ours), ("naive", naive_t, naive)):
        r = res["ranks"]
        print(f"{name:10}{t:>10.1f}{res['peak_rss_bytes'] / 2**20:>10.0f}   {r['H_L']} / {r['H_o']} / {r['H_F']}")
    same = ours["ranks"] == naive["ranks"]
    print(f"speed-up: {naive_t / ours_t:.2f}x   identical ranks: {same}   (method {ours['method']})")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
