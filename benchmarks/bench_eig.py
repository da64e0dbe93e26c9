"""Eigenvalues of a symmetric p×p float64 matrix, three ways, same matrix, same process:

* SciPy's ``eigvalsh`` (LAPACK ``syevd``, one-stage tridiagonal reduction) — the baseline;
* hessrank's ``linalg.spectrum`` (LAPACK ``syevd_2stage`` from SciPy's OpenBLAS, see
  ``src/hessrank/linalg/lapack.py``), what dense runs use;
* ``jax.numpy.linalg.eigvalsh`` on JAX's default device (a GPU where there is one).

    python3 benchmarks/bench_eig.py [p ...]      # default p = 4560 8040

The machines this project runs on set ``OPENBLAS_CORETYPE=Haswell`` and ``OPENBLAS_L2_SIZE``
(for old OpenBLAS builds); a user's machine does not, so this script re-runs itself with
both unset — in its own process only — and prints which OpenBLAS kernel ran.
"""

import os
import subprocess
import sys
import time

PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def main(sizes):
    import jax
    import jax.numpy as jnp
    import numpy as np
    import scipy.linalg
    from threadpoolctl import threadpool_info

    from hessrank.linalg import spectrum
    from hessrank.linalg.lapack import two_stage_available

    jax.config.update("jax_enable_x64", True)
    kernels = sorted({i.get("architecture", "?") for i in threadpool_info() if i["internal_api"] == "openblas"})
    print(f"OpenBLAS kernel: {', '.join(kernels)}; cores: {os.cpu_count()}; two-stage driver: "
          f"{'yes' if two_stage_available() else 'no (spectrum falls back to syevd)'}")
    f = jax.jit(jnp.linalg.eigvalsh)
    for p in sizes:
        A = np.random.default_rng(0).standard_normal((p, p))
        A = A + A.T
        t = time.perf_counter()
        w1 = scipy.linalg.eigvalsh(A, driver="evd")
        t_evd = time.perf_counter() - t
        t = time.perf_counter()
        w2 = spectrum(A)
        t_two = time.perf_counter() - t
        times = []
        for _ in range(2):  # the first call compiles
            t = time.perf_counter()
            w3 = np.asarray(f(jnp.asarray(A)).block_until_ready())
            times.append(time.perf_counter() - t)
        scale = np.max(np.abs(w1))
        err2 = np.max(np.abs(np.sort(w1) - np.sort(w2))) / scale
        err3 = np.max(np.abs(np.sort(w1) - np.sort(w3))) / scale
        print(f"p = {p}: scipy syevd {t_evd:.2f} s; hessrank spectrum (syevd_2stage) {t_two:.2f} s "
              f"({t_evd / t_two:.1f}x); jax on {jax.devices()[0].platform} {times[1]:.2f} s "
              f"({t_evd / times[1]:.1f}x); max |difference| / max|λ|: {err2:.1e}, {err3:.1e}")


if __name__ == "__main__":
    if any(k in os.environ for k in PINS):
        env = {k: v for k, v in os.environ.items() if k not in PINS}
        sys.exit(subprocess.run([sys.executable, *sys.argv], env=env).returncode)
    main([int(a) for a in sys.argv[1:]] or [4560, 8040])
