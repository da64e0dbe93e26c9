"""Eigenvalues of a symmetric p×p float64 matrix: SciPy's LAPACK (evd, on the CPU)
against ``jax.numpy.linalg.eigvalsh`` on JAX's default device (a GPU where there is one).

    python3 benchmarks/bench_eig.py [p ...]      # default p = 4560 10000
"""

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

jax.config.update("jax_enable_x64", True)


def main(sizes):
    f = jax.jit(jnp.linalg.eigvalsh)
    for p in sizes:
        A = np.random.default_rng(0).standard_normal((p, p))
        A = A + A.T
        t = time.perf_counter()
        w1 = scipy.linalg.eigvalsh(A, driver="evd")
        t_scipy = time.perf_counter() - t
        times = []
        for _ in range(2):  # the first call compiles
            t = time.perf_counter()
            w2 = np.asarray(f(jnp.asarray(A)).block_until_ready())
            times.append(time.perf_counter() - t)
        err = np.max(np.abs(np.sort(w1) - np.sort(w2))) / np.max(np.abs(w1))
        print(f"p = {p}: scipy {t_scipy:.2f} s; jax on {jax.devices()[0].platform}: {times[0]:.2f} s "
              f"(again {times[1]:.2f} s); speed-up {t_scipy / times[1]:.1f}x; "
              f"max |difference| / max|λ| = {err:.1e}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [4560, 10000])
