"""Time per product of the matrix-free operators H_F, H_L and H_o (rows V -> rows of V H).

    python3 benchmarks/bench_products.py [--rows 128] [--repeat 5]
    python3 benchmarks/bench_products.py --units 40,40 --K 10 [--n 100] [--dim 64]   # one configuration

Default: two configurations of Gaussian data, n = 100, d = 64, mse, linear activation: widths
300,300 with K = 3 (p = 110,100) and widths 40,40 with K = 10 (p = 4560). For each operator:
its compilation (first one-row call minus a second one), then ``--repeat`` blocks of ``--rows``
rows after a warm-up: the median wall time per product and the median process CPU time per
product (the CPU time over all threads: on a shared machine the wall time is the noisier one).
The GFlop/s use XLA's flop count of one product: the program for two rows minus the program for
one, so the linearization at θ that each call does once is not counted. OpenBLAS pins
(``OPENBLAS_CORETYPE``, ``OPENBLAS_L2_SIZE``) are unset for this process only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
#: (widths, K) of the default configurations
CONFIGS = (((300, 300), 3), ((40, 40), 10))


def main(argv=None) -> int:
    """Print the per-product times of each configuration."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=128, help="rows of V per timed block (default 128)")
    ap.add_argument("--repeat", type=int, default=5, help="timed blocks per operator (default 5)")
    ap.add_argument("--units", default=None, help="hidden widths of one configuration, e.g. 40,40")
    ap.add_argument("--K", type=int, default=None)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--dim", type=int, default=64)
    args = ap.parse_args(argv)
    if (args.units is None) != (args.K is None):
        ap.error("--units and --K go together")
    configs = CONFIGS if args.units is None else ((tuple(int(u) for u in args.units.split(",")), args.K),)

    import jax

    print(f"{os.cpu_count()} cores, JAX {jax.__version__} on {jax.default_backend()}; load average "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())} (a shared machine)", flush=True)
    for units, K in configs:
        _bench(units, K, args)
    print(f"load average at the end {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


def _bench(units, K, args) -> None:
    """Time the three operators of one configuration."""
    import numpy as np

    from hessrank import RunConfig, get_loss
    from hessrank.curvature import functional_hessian_operator, loss_hessian_operator, outer_product_operator
    from hessrank.curvature.operators import _rows_per_call
    from hessrank.measure import build

    cfg = RunConfig(dataset="gaussian", n=args.n, dim=args.dim, K=K, units=units, loss="mse", method="matrix-free")
    data, model, theta = build(cfg)
    loss = get_loss(cfg.loss)
    p = model.num_params
    batch = cfg.effective_batch_size(data.n)
    V = np.random.default_rng(0).standard_normal((args.rows, p))
    print(f"p = {p} (widths {','.join(map(str, units))}, K = {K}, n = {args.n}, d = {args.dim}); "
          f"{_rows_per_call(p)} rows per call, blocks of {args.rows} rows, median of {args.repeat}")
    for name, make in (("H_F", functional_hessian_operator), ("H_L", loss_hessian_operator),
                       ("H_o", outer_product_operator)):
        op = make(model, loss, theta, data.X, data.Y, batch_size=batch)
        t = time.perf_counter()
        op(V[:1])
        first = time.perf_counter() - t
        t = time.perf_counter()
        op(V[:1])
        compile_s = first - (time.perf_counter() - t)
        op(V)                                                            # warm-up
        walls, cpus = [], []
        for _ in range(args.repeat):
            c, t = time.process_time(), time.perf_counter()
            op(V)
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
        wall, cpu = np.median(walls) / args.rows, np.median(cpus) / args.rows
        flops = _flops_per_product(name, model, loss, theta, data.X[:batch], data.Y[:batch]) * -(-data.n // batch)
        print(f"  {name}: {wall * 1e3:8.3f} ms wall, {cpu * 1e3:8.3f} ms CPU per product; "
              f"{flops / 1e6:7.1f} MFlop -> {flops / wall / 1e9:6.1f} GFlop/s wall, {flops / cpu / 1e9:6.1f} per "
              f"CPU-second; compilation {compile_s:.2f} s", flush=True)


def _flops_per_product(name, model, loss, theta, X, Y) -> float:
    """XLA's flop count of one product on one batch: the two-row program minus the one-row one."""
    import jax
    import numpy as np

    from hessrank.curvature import float64_scope
    from hessrank.curvature.operators import _functional_hessian_rows, _loss_hessian_rows, _outer_product_rows

    rows = {"H_F": _functional_hessian_rows, "H_L": _loss_hessian_rows, "H_o": _outer_product_rows}[name]
    with float64_scope():
        w = np.ones(X.shape[0])

        def count(m):
            V = np.zeros((m, theta.shape[0]))
            compiled = jax.jit(rows, static_argnums=(0, 1)).lower(model, loss, theta, X, Y, w, V).compile()
            cost = compiled.cost_analysis()
            return float((cost[0] if isinstance(cost, list) else cost)["flops"])

        return count(2) - count(1)


if __name__ == "__main__":
    if any(k in os.environ for k in PINS):
        env = {k: v for k, v in os.environ.items() if k not in PINS}
        sys.exit(subprocess.run([sys.executable, *sys.argv], env=env).returncode)
    sys.exit(main())
