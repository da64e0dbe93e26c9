"""Matrix-free ranks — agreement with dense, speed when small, reach when large.

    python3 benchmarks/bench_matrix_free.py agreement   # >= 30 configurations, matrix-free vs dense ranks
    python3 benchmarks/bench_matrix_free.py small       # p = 4560: whole `run --method matrix-free` vs naive
    python3 benchmarks/bench_matrix_free.py large       # p = 110,100: ranks vs predictions, time, peak memory
    python3 benchmarks/bench_matrix_free.py table       # p against time and peak memory, dense and matrix-free
    python3 benchmarks/bench_matrix_free.py matfree     # matfree's Lanczos against the certified block sketch
    python3 benchmarks/bench_matrix_free.py all

Timed runs are fresh processes (`hessian-rank run --json`, or `naive.py`), one after
the other on this machine; wall time includes process start, peak memory is the
child's own peak resident set (`ru_maxrss`). Every ratio compares numbers measured
in the same invocation. Exit status 1 if a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _report import command_line, markdown_table, write_report  # noqa: E402

SMALL = dict(n=100, dim=64, units="40,40", K=10, loss="mse")          # p = 4560
LARGE = dict(n=100, dim=64, units="300,300", K=3, loss="mse")         # p = 110,100
TABLE = [  # (units, K); Gaussian data n = 100, d = 64, mse
    ("10,10", 10), ("40,40", 10), ("60,60", 10), ("120,120", 10), ("200,200", 3), ("300,300", 3),
]
DENSE_UP_TO = 9000   # dense is timed up to this p (beyond: hours / more memory than the machine has)
#: set on these machines for old OpenBLAS builds; users' machines do not: unset in the timed processes only
PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in PINS}


def _cli(method: str, spec: dict, *, timeout: float | None = None) -> tuple[float, dict]:
    cmd = [sys.executable, "-m", "hessrank.cli", "run", "--dataset", "gaussian", "--n", str(spec["n"]),
           "--dim", str(spec["dim"]), "--units", spec["units"], "--K", str(spec["K"]), "--loss", spec["loss"],
           "--method", method, "--json"]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=timeout, env=_env()).stdout
    return time.perf_counter() - t0, json.loads(out)


def _naive(spec: dict) -> tuple[float, dict]:
    cmd = [sys.executable, str(HERE / "naive.py"), "--dataset", "gaussian", "--n", str(spec["n"]),
           "--dim", str(spec["dim"]), "--units", spec["units"], "--K", str(spec["K"]), "--loss", spec["loss"]]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=_env()).stdout
    return time.perf_counter() - t0, json.loads(out)


def _ranks(res: dict) -> str:
    r = res["ranks"]
    return f"{r['H_L']} / {r['H_o']} / {r['H_F']}"


# --------------------------------------------------------------------------- agreement
def agreement_configs(seed: int = 6):
    """>= 30 configurations: random linear nets (all losses, bottlenecks, n below and above d),
    tanh and ReLU nets (with and without bias), and a few other activations."""
    from hessrank import RunConfig

    rng = np.random.default_rng(seed)
    configs = []
    for i in range(14):
        depth = int(rng.integers(1, 4))
        units = tuple(int(u) for u in rng.integers(2, 25, size=depth))
        d = int(rng.integers(4, 30))
        n = int(rng.integers(2, int(0.6 * d) + 2)) if i % 2 else int(rng.integers(int(1.7 * d) + 1, 3 * d))
        loss = ("mse", "cross", "cosh")[i % 3]
        K = int(rng.integers(2, 11))
        if i % 4 == 3:
            units = (*units[:-1], int(rng.integers(1, K)))           # bottleneck below K
        configs.append(RunConfig(dataset="gaussian", n=n, dim=d, K=K, units=units, loss=loss,
                                 seed=int(rng.integers(1000)), batch_size=max(1, n // 2)))
    for activation in ("tanh", "relu"):
        for j, (n, d, units, K, loss, bias) in enumerate([
            (10, 16, (20, 20), 10, "mse", False), (40, 16, (20, 20), 10, "mse", False),
            (100, 16, (12, 12), 5, "cross", False), (30, 8, (10,), 4, "cosh", False),
            (20, 12, (8, 8, 8), 3, "cross", True), (60, 10, (15, 10), 6, "mse", True),
            (8, 30, (25, 25), 10, "cosh", False), (150, 6, (6, 6), 3, "mse", False),
        ]):
            configs.append(RunConfig(dataset="gaussian", n=n, dim=d, K=K, units=units, loss=loss,
                                     activation=activation, bias=bias, seed=10 + j))
    for activation in ("sigmoid", "elu", "leaky_relu"):
        configs.append(RunConfig(dataset="gaussian", n=25, dim=10, K=4, units=(12, 9), loss="cross",
                                 activation=activation, seed=3))
    return configs


def agreement(_args) -> bool:
    from hessrank import run

    configs = agreement_configs()
    print(f"agreement battery: {len(configs)} configurations, matrix-free against dense, same tolerance rule")
    print(f"{'network':<34}{'loss':<6}{'n':>4}{'p':>6}  {'dense H_L/H_o/H_F':<19}{'matrix-free':<19}"
          f"{'same':<6}{'gap dense':>10}{'gap mf':>8}  sketch")
    linear_ok, nonlinear_same, nonlinear = True, 0, 0
    t_dense = t_free = 0.0
    rows = []
    for cfg in configs:
        dense = run(cfg.replace(method="dense"))
        free = run(cfg.replace(method="matrix-free"))
        t_dense += dense.seconds
        t_free += free.seconds
        rd = {k: dense.ranks[k].rank for k in ("H_L", "H_o", "H_F")}
        rf = {k: free.ranks[k].rank for k in ("H_L", "H_o", "H_F")}
        same = rd == rf
        if cfg.activation == "linear" and not cfg.bias:
            linear_ok &= same
        else:
            nonlinear += 1
            nonlinear_same += same
        gaps = [dense.ranks[k].gap_decades for k in rd if dense.ranks[k].gap_decades is not None]
        gaps_f = [free.ranks[k].gap_decades for k in rf if free.ranks[k].gap_decades is not None]
        status = ",".join(sorted({free.method_details[k]["status"].split(":")[0] for k in ("H_L", "H_F")}))
        net = f"{cfg.dim}-{'-'.join(map(str, cfg.units))}-{cfg.K} {cfg.activation}{' +b' if cfg.bias else ''}"
        fmt = lambda r: f"{r['H_L']}/{r['H_o']}/{r['H_F']}"  # noqa: E731
        print(f"{net:<34}{cfg.loss:<6}{cfg.n:>4}{dense.p:>6}  {fmt(rd):<19}{fmt(rf):<19}{'yes' if same else 'NO':<6}"
              f"{min(gaps, default=float('nan')):>10.1f}{min(gaps_f, default=float('nan')):>8.1f}  {status}")
        rows.append([net, cfg.loss, cfg.n, dense.p, fmt(rd), fmt(rf), "yes" if same else "NO",
                     f"{min(gaps, default=float('nan')):.1f}", f"{min(gaps_f, default=float('nan')):.1f}", status])
        if not same:
            for k in rd:
                if rd[k] != rf[k]:
                    lam = np.abs(dense.ranks[k].eigenvalues)
                    r = min(rd[k], rf[k])
                    print(f"    {k}: dense eigenvalues around the cut {lam[max(r - 1, 0):r + 2]} "
                          f"tol {dense.ranks[k].tol:.2e}; matrix-free {free.method_details[k]}")
    print(f"linear networks: {'all identical' if linear_ok else 'MISMATCH'}; "
          f"non-linear: {nonlinear_same} of {nonlinear} identical; "
          f"in-process time dense {t_dense:.1f} s, matrix-free {t_free:.1f} s")
    write_report("agreement", command_line(__file__, ["agreement"]), markdown_table(
        ["network", "loss", "n", "p", "dense H_L / H_o / H_F", "matrix-free", "same", "smallest gap, dense",
         "smallest gap, matrix-free", "sketch"], rows, "llrrlllrrl"),
        notes=f"Linear networks: {'all identical' if linear_ok else 'MISMATCH'}; non-linear: {nonlinear_same} of "
        f"{nonlinear} identical, at the same tolerance rule. Gaps in decades (matrix-free: a lower bound).")
    return linear_ok


# --------------------------------------------------------------------------- small
def small(_args) -> bool:
    free_t, free = _cli("matrix-free", SMALL)
    naive_t, naive = _naive(SMALL)
    print(f"p = {free['p']} (Gaussian n = 100, d = 64, widths 40,40, K = 10, mse), {os.cpu_count()} cores")
    print(f"{'':22}{'wall s':>9}{'peak MiB':>10}   ranks H_L / H_o / H_F")
    for name, t, res in (("matrix-free (whole run)", free_t, free), ("naive dense", naive_t, naive)):
        print(f"{name:<22}{t:>9.1f}{res['peak_rss_bytes'] / 2**20:>10.0f}   {_ranks(res)}")
    same = free["ranks"] == naive["ranks"]
    ratio = naive_t / free_t
    print(f"speed-up {ratio:.1f}x (goal >= 10x)   identical ranks: {same}   matrix-free timings {free['timings']}")
    return same and ratio >= 10


# --------------------------------------------------------------------------- large
def large(_args) -> bool:
    wall, res = _cli("matrix-free", LARGE, timeout=3600)
    pred = res["predictions"]
    peak = res["peak_rss_bytes"]
    print(f"p = {res['p']} (Gaussian n = 100, d = 64, widths 300,300, K = 3, mse), {os.cpu_count()} cores; "
          f"dense would need {5 * res['p'] ** 2 * 8 / 2**30:.0f} GiB (5 p×p matrices), "
          f"{res['p'] ** 2 * 8 / 1e9:.0f} GB per matrix")
    print(f"{'matrix':<7}{'rank':>7}{'predicted':>11}{'gap':>7}  sketch")
    ok = True
    for k in ("H_L", "H_o", "H_F"):
        det = res["method_details"][k]
        gap = res["gap_decades"][k]
        ok &= res["ranks"][k] == pred[k]
        extra = (f"{det['status']}, {det['columns']} vectors, {det['matvecs']} products, δ = "
                 f"{det['residual_bound']:.1e}"
                 if "residual_bound" in det else det["how"])
        print(f"{k:<7}{res['ranks'][k]:>7}{pred[k]:>11}{gap if gap is None else round(gap, 1):>7}  {extra}")
    print(f"wall {wall:.0f} s (goal <= 600), peak memory {peak / 2**30:.2f} GiB = {peak / 1e9:.2f} GB (goal <= 8 GB); "
          f"timings {res['timings']}")
    return ok and wall <= 600 and peak <= 8e9


# --------------------------------------------------------------------------- table
def table(_args) -> bool:
    header = ("| p | widths, K | dense: wall | dense: peak memory | matrix-free: wall | matrix-free: peak memory "
              "| ranks H_L / H_o / H_F | same as dense |\n| ---: | --- | ---: | ---: | ---: | ---: | --- | --- |")
    print(f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())} (a shared machine); OpenBLAS pins "
          "unset in the timed processes", flush=True)
    print(header, flush=True)
    rows, ok = [], True
    for units, K in TABLE:
        spec = dict(n=100, dim=64, units=units, K=K, loss="mse")
        widths = [64, *map(int, units.split(",")), K]
        p = sum(a * b for a, b in zip(widths[:-1], widths[1:]))
        free_t, free = _cli("matrix-free", spec, timeout=3600)
        if p <= DENSE_UP_TO:
            dense_t, dense = _cli("dense", spec, timeout=3600)
            same = dense["ranks"] == free["ranks"]
            ok &= same
            d = f"{dense_t:.1f} s | {dense['peak_rss_bytes'] / 2**30:.2f} GiB"
        else:
            same = None
            d = f"— | (needs {5 * p * p * 8 / 2**30:.0f} GiB)"
        row = (f"| {p} | {units}, {K} | {d} | {free_t:.1f} s | {free['peak_rss_bytes'] / 2**30:.2f} GiB "
               f"| {_ranks(free)} | {'—' if same is None else ('yes' if same else 'NO')} |")
        print(row, flush=True)
        rows.append(row)
    print(f"\n(Gaussian data n = 100, d = 64, mse; {os.cpu_count()} cores; wall time of the whole "
          "`hessian-rank run` process, peak resident memory of that process)")
    write_report("matrix-free", command_line(__file__, ["table"]), header + "\n" + "\n".join(rows),
                 notes="Gaussian data n = 100, d = 64, mse. Wall time of the whole `hessian-rank run` process, "
                 "peak resident memory of that process; dense is not run where it would not fit.")
    return ok


# --------------------------------------------------------------------------- matfree
def matfree_eval(_args) -> bool:
    """matfree's Lanczos (full reorthogonalisation) against the certified block sketch."""
    import jax
    import jax.numpy as jnp
    from matfree import decomp

    import hessrank
    from hessrank.curvature import CurvatureOperator, functional_hessian_operator, sample_outputs
    from hessrank.linalg.rank import rank_from_eigenvalues
    from hessrank.linalg.sketch import sketch_rank
    from hessrank.measure import build

    # 1) repeated eigenvalues: a single Krylov vector sees each distinct eigenvalue once
    p = 400
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    lam = np.r_[np.full(60, 3.0), np.full(40, -1.0), np.linspace(0.5, 2.0, 50)]
    H = (Q[:, :lam.size] * lam) @ Q[:, :lam.size].T
    Hj = jnp.asarray(H)
    tri = decomp.tridiag_sym(lam.size + 20, reortho="full")
    res = tri(lambda v: Hj @ v, jnp.asarray(rng.standard_normal(p)))
    ritz = np.linalg.eigvalsh(np.asarray(res.J_small))
    lanczos_rank = rank_from_eigenvalues(ritz, p).rank
    ours = sketch_rank(CurvatureOperator("H", p, lambda V: V @ H), block=32, probes=16)
    print(f"repeated eigenvalues (p = {p}, true rank {lam.size}: 3.0 ×60, −1.0 ×40, 50 distinct): "
          f"matfree tridiag_sym({lam.size + 20}) Ritz rank {lanczos_rank}; block sketch {ours.info.rank} "
          f"({ours.certificate.status})")
    ok = ours.info.rank == lam.size

    # 2) H_F at p = 4560 (linear net: distinct eigenvalues), depth = the sketch's basis size
    cfg = hessrank.RunConfig(dataset="gaussian", n=100, dim=64, K=10, units=(40, 40))
    data, model, theta = build(cfg)
    loss = hessrank.get_loss("mse")
    X, Y, th = jnp.asarray(data.X), jnp.asarray(data.Y), jnp.asarray(theta)
    _, G, _ = sample_outputs(model, loss, th, X, Y)
    _, hvp = jax.linearize(jax.grad(lambda t: jnp.sum(G * model.apply(t, X))), th)
    t = time.perf_counter()
    sk = sketch_rank(functional_hessian_operator(model, loss, theta, data.X, data.Y))
    t_sketch = time.perf_counter() - t
    depth = sk.certificate.columns + 32
    tri = jax.jit(lambda v: decomp.tridiag_sym(depth, reortho="full")(hvp, v).J_small)
    t = time.perf_counter()
    T = np.asarray(tri(jnp.asarray(np.random.default_rng(1).standard_normal(model.num_params))))
    t_lanczos = time.perf_counter() - t
    lanczos = rank_from_eigenvalues(np.linalg.eigvalsh(T), model.num_params)
    print(f"H_F, p = {model.num_params}: certified block sketch rank {sk.info.rank} in {t_sketch:.1f} s "
          f"({sk.certificate.columns} vectors, {sk.certificate.matvecs} products); matfree tridiag_sym({depth}) "
          f"rank {lanczos.rank} in {t_lanczos:.1f} s (depth fixed in advance, no certificate)")
    return ok


CHECKS = {"agreement": agreement, "small": small, "large": large, "table": table, "matfree": matfree_eval}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("check", choices=[*CHECKS, "all"])
    args = ap.parse_args(argv)
    names = list(CHECKS) if args.check == "all" else [args.check]
    results = {}
    for name in names:
        print(f"== {name}", flush=True)
        results[name] = CHECKS[name](args)
        print(flush=True)
    print("result: " + ", ".join(f"{k} {'ok' if v else 'FAILED'}" for k, v in results.items()))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
