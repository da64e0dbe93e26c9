"""Where the time of a matrix-free run goes: compilation, products, orthogonalisation, eigenvalues.

    python3 benchmarks/profile_matrix_free.py [--units 300,300] [--K 3] [--n 100] [--dim 64]

Default: the large configuration of bench_matrix_free.py, p = 110,100 (Gaussian n = 100, d = 64, widths 300,300,
K = 3, mse). In one process: the compilation of the H_F and H_L products (first call
minus a second call of the same shape), then :func:`hessrank.measure.matrix_free_ranks`
with each sketch's own clock (products, orthogonalisation, eigenvalues of T), the H_o
Gram route and what is left (T updates, checks, Python); peak resident memory at the end.
OpenBLAS pins (``OPENBLAS_CORETYPE``, ``OPENBLAS_L2_SIZE``) are unset for this process
only, and the kernel that ran is printed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def main(argv=None) -> int:
    """Print the profile of one matrix-free run; exit status 1 if a rank differs from its prediction."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--units", default="300,300")
    ap.add_argument("--K", type=int, default=3)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--dim", type=int, default=64)
    args = ap.parse_args(argv)

    import numpy as np
    from threadpoolctl import threadpool_info

    from hessrank import RunConfig, get_loss
    from hessrank.curvature import float64_scope, functional_hessian_operator, loss_hessian_operator
    from hessrank.measure import build, expected_basis, matrix_free_ranks, peak_rss_bytes, plan_method, predict_for

    t_start = time.perf_counter()
    kernels = sorted({i.get("architecture", "?") for i in threadpool_info() if i["internal_api"] == "openblas"})
    cfg = RunConfig(dataset="gaussian", n=args.n, dim=args.dim, K=args.K,
                    units=tuple(int(u) for u in args.units.split(",")), loss="mse", method="matrix-free")
    data, model, theta = build(cfg)
    loss = get_loss(cfg.loss)
    p = model.num_params
    _, prediction = predict_for(cfg, data, data.n, model.num_params)
    plan = plan_method("matrix-free", p, data.n, data.K, basis=expected_basis(prediction))
    print(f"p = {p} (Gaussian n = {args.n}, d = {args.dim}, widths {args.units}, K = {args.K}, mse); "
          f"OpenBLAS kernel {', '.join(kernels)}; {os.cpu_count()} cores; load average "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())} (a shared machine)", flush=True)

    compile_s = {}
    with float64_scope():
        V = np.random.default_rng(0).standard_normal((1, p))
        for name, make in (("H_F", functional_hessian_operator), ("H_L", loss_hessian_operator)):
            op = make(model, loss, theta, data.X, data.Y, batch_size=cfg.effective_batch_size(data.n))
            t = time.perf_counter()
            op(V)
            first = time.perf_counter() - t
            t = time.perf_counter()
            op(V)
            compile_s[name] = first - (time.perf_counter() - t)
    t = time.perf_counter()
    res = matrix_free_ranks(model, loss, theta, data.X, data.Y, batch_size=cfg.effective_batch_size(data.n),
                            memory_bytes=plan.budget)
    total = time.perf_counter() - t
    print(f"compilation of the products (first call minus second): "
          f"{', '.join(f'{k} {v:.1f} s' for k, v in compile_s.items())}")
    print(f"{'matrix':<7}{'rank':>6}{'pred':>6}{'wall s':>8}{'products':>10}{'orthog.':>9}{'eigen':>8}"
          f"{'other':>8}{'basis':>7}{'matvecs':>9}  status")
    split = {"products": 0.0, "orthogonalisation": 0.0, "eigenvalues": 0.0}
    ok = True
    for m in ("H_F", "H_o", "H_L"):
        det = res.details[m]
        sec = det.get("seconds", {})
        wall = res.timings.get(m, 0.0)
        for k in split:
            split[k] += sec.get(k, 0.0)
        other = wall - sum(sec.values())
        pred = getattr(prediction, m)
        ok &= res.ranks[m].rank == pred
        print(f"{m:<7}{res.ranks[m].rank:>6}{pred:>6}{wall:>8.1f}{sec.get('products', 0):>10.1f}"
              f"{sec.get('orthogonalisation', 0):>9.1f}{sec.get('eigenvalues', 0):>8.1f}{other:>8.1f}"
              f"{det.get('columns', ''):>7}{det.get('matvecs', ''):>9}  {det.get('status', '')}")
    rest = total - sum(split.values())
    print(f"matrix_free_ranks {total:.1f} s: products {split['products']:.1f} s, orthogonalisation "
          f"{split['orthogonalisation']:.1f} s, eigenvalues of T {split['eigenvalues']:.1f} s, H_o Gram route, "
          f"T updates and the rest {rest:.1f} s; plus compilation {sum(compile_s.values()):.1f} s; "
          f"whole script {time.perf_counter() - t_start:.1f} s; peak memory {peak_rss_bytes() / 1e9:.2f} GB; "
          f"ranks {'= predictions' if ok else 'DIFFER from the predictions'}")
    return 0 if ok else 1


if __name__ == "__main__":
    if any(k in os.environ for k in PINS):
        env = {k: v for k, v in os.environ.items() if k not in PINS}
        sys.exit(subprocess.run([sys.executable, *sys.argv], env=env).returncode)
    sys.exit(main())
