"""`hessian-rank spectrum --top-eigenvalues 20 --trace --density` against PyHessian-style power
iteration and a full dense eigendecomposition.

    python3 benchmarks/bench_spectrum.py small   # p = 4560: spectrum (matrix-free), dense eigh, power iteration
    python3 benchmarks/bench_spectrum.py large   # p = 110,100: spectrum (matrix-free) and power iteration

The spectrum runs are fresh processes of the CLI. These machines pin old OpenBLAS kernels
through OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE; this benchmark unsets both in the environment
of its own subprocesses only (never the tests). "Power iteration" is implemented here, on our
own operator, the way PyHessian computes top eigenvalues: one vector at a time, deflating
the eigenvectors already found, until the Rayleigh quotient changes by less than 1e-3
relative (PyHessian's default tol) or 100 iterations.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _report import command_line, markdown_table, write_report  # noqa: E402

SMALL = dict(n=100, dim=64, units="40,40", K=10, loss="mse")          # p = 4560
LARGE = dict(n=100, dim=64, units="300,300", K=3, loss="mse")         # p = 110,100


def _env():
    env = dict(os.environ)
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        env.pop(key, None)
    return env


def spectrum_cli(spec, method="matrix-free", top=20):
    cmd = [sys.executable, "-m", "hessrank.cli", "spectrum", "--dataset", "gaussian", "--n", str(spec["n"]),
           "--dim", str(spec["dim"]), "--units", spec["units"], "--K", str(spec["K"]), "--loss", spec["loss"],
           "--method", method, "--top-eigenvalues", str(top), "--trace", "--density", "--json",
           "--out", "/tmp/bench_spectrum"]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=_env()).stdout
    return time.perf_counter() - t0, json.loads(out)


def power_iteration_top(operator, k, *, tol=1e-3, max_iter=100, seed=0):
    """PyHessian-style: the top-k eigenvalues (largest magnitude) one at a time with deflation."""
    rng = np.random.default_rng(seed)
    found, vecs, products = [], [], 0
    for _ in range(k):
        v = rng.standard_normal(operator.p)
        v /= np.linalg.norm(v)
        lam = None
        for _ in range(max_iter):
            for u in vecs:
                v -= (u @ v) * u
            w = operator(v[None, :])[0]
            products += 1
            for u in vecs:
                w -= (u @ w) * u
            new = float(v @ w)
            v = w / np.linalg.norm(w)
            if lam is not None and abs(new - lam) < tol * abs(lam):
                lam = new
                break
            lam = new
        found.append(lam)
        vecs.append(v)
    return np.array(found), products


def power_iteration_run(spec, k=20):
    import hessrank  # noqa: F401
    from hessrank import RunConfig
    from hessrank.curvature import loss_hessian_operator
    from hessrank.measure import build
    from hessrank.models import get_loss

    cfg = RunConfig(dataset="gaussian", n=spec["n"], dim=spec["dim"], units=tuple(map(int, spec["units"].split(","))),
                    K=spec["K"], loss=spec["loss"])
    data, model, theta = build(cfg)
    op = loss_hessian_operator(model, get_loss(cfg.loss), theta, data.X, data.Y)
    t0 = time.perf_counter()
    lam, products = power_iteration_top(op, k)
    return time.perf_counter() - t0, lam, products


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["small", "large"])
    ap.add_argument("--spectrum-json", metavar="FILE", help="take the spectrum command's --json output from FILE "
                    "(a run made earlier with the same configuration) instead of running it again")
    args = ap.parse_args(argv)
    spec = SMALL if args.what == "small" else LARGE
    if args.spectrum_json:
        with open(args.spectrum_json) as fh:
            res = json.load(fh)
        t = res["seconds"]
        print(f"(spectrum output from {args.spectrum_json}: its own in-process time, not this run's)")
    else:
        t, res = spectrum_cli(spec)
    top = np.array(res["H_L"]["top"])
    ranks = f"{res['H_L']['rank']} / {res['H_o']['rank']} / {res['H_F']['rank']}"
    rows = [["`spectrum --method matrix-free --top-eigenvalues 20 --trace --density` (all three matrices)",
             f"{t:.1f} s" + (" (in-process, earlier run)" if args.spectrum_json else ""),
             f"{res['peak_rss_bytes'] / 2**30:.2f} GiB", "", ranks]]
    print(f"spectrum --method matrix-free --top-eigenvalues 20 --trace --density (all three matrices): {t:.1f} s wall, "
          f"peak RSS {res['peak_rss_bytes'] / 2**30:.2f} GiB, ranks "
          f"{res['H_L']['rank']} / {res['H_o']['rank']} / {res['H_F']['rank']}")
    if args.what == "small":
        t, dense = spectrum_cli(spec, method="dense")
        print(f"spectrum --method dense (full eigendecompositions): {t:.1f} s wall; max relative difference of the "
              f"top 20 of H_L: {np.max(np.abs(np.array(dense['H_L']['top']) - top) / np.abs(top)):.1e}")
        rows.append(["`spectrum --method dense` (full eigendecompositions)", f"{t:.1f} s",
                     f"{dense['peak_rss_bytes'] / 2**30:.2f} GiB", "", "top 20 of H_L equal to "
                     f"{np.max(np.abs(np.array(dense['H_L']['top']) - top) / np.abs(top)):.1e} relative"])
    t, lam, products = power_iteration_run(spec)
    # H_L is indefinite and its top magnitudes come in near ± pairs: compare each power-iteration
    # value with the nearest of the spectrum's top 20 (an order by magnitude pairs +x with −x)
    nearest = np.array([np.min(np.abs(top - x)) / abs(x) for x in lam])
    print(f"power iteration with deflation (H_L only, top 20): {t:.1f} s, {products} products; relative distance "
          f"of each value to the nearest of the spectrum's top 20: median {np.median(nearest):.1e}, "
          f"max {np.max(nearest):.1e}")
    rows.append(["power iteration with deflation (PyHessian's rule; H_L only, top 20)", f"{t:.1f} s", "",
                 f"{products}", f"relative distance to the nearest certified top-20 value: median "
                 f"{np.median(nearest):.1e}, max {np.max(nearest):.1e}"])
    p = "4560 (widths 40,40, K 10)" if args.what == "small" else "110,100 (widths 300,300, K 3)"
    write_report(f"spectrum-{args.what}", command_line(__file__, argv), markdown_table(
        ["what", "wall", "peak", "products", "ranks H_L / H_o / H_F, accuracy"], rows, "lrrrl"),
        notes=f"Gaussian data n = 100, d = 64, linear network, mse, p = {p}. The spectrum command runs as a fresh "
        "process; power iteration runs in this process on hessrank's own H_L operator, one vector at a time, "
        "deflating the eigenvectors found, until the Rayleigh quotient changes by less than 1e-3 relative.")


if __name__ == "__main__":
    main()
