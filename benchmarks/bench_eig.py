"""Eigenvalues of a symmetric p×p float64 matrix, three ways, same matrix, same process:

* SciPy's ``eigvalsh`` (LAPACK ``syevd``, one-stage tridiagonal reduction) — the baseline;
* hessrank's ``linalg.spectrum`` (LAPACK ``syevd_2stage`` from SciPy's OpenBLAS, see
  ``src/hessrank/linalg/lapack.py``), what dense runs use;
* ``jax.numpy.linalg.eigvalsh`` on JAX's default device (a GPU where there is one).

    python3 benchmarks/bench_eig.py [p ...] [--repeat N] [--no-jax] [--mkl PATH/libmkl_rt.so.N]
    # default p = 4560 8040, N = 2; --mkl adds Intel MKL's dsyevd (what PyTorch's eigvalsh runs)

The two LAPACK drivers run interleaved (syevd, two-stage, syevd, two-stage, …) on the
same matrix; medians are printed (the machine may be shared: the load average is printed).

The machines this project runs on set ``OPENBLAS_CORETYPE=Haswell`` and ``OPENBLAS_L2_SIZE``
(for old OpenBLAS builds); a user's machine does not, so this script re-runs itself with
both unset — in its own process only — and prints which OpenBLAS kernel ran.
"""

import os
import subprocess
import sys
import time

PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def mkl_eigvalsh(path):
    """Eigenvalues only with Intel MKL's ``dsyevd`` (LAPACKE, via ctypes) from ``path``
    (``libmkl_rt.so``; e.g. ``pip install mkl`` in a throwaway venv): the library PyTorch's
    ``eigvalsh`` runs on x86. Not a dependency of hessrank, only this comparison."""
    import ctypes
    import glob

    import numpy as np

    folder = os.path.dirname(path)
    for omp in glob.glob(os.path.join(folder, "libiomp5.so")):
        ctypes.CDLL(omp, mode=ctypes.RTLD_GLOBAL)
    lib = ctypes.CDLL(path)
    fn = lib.LAPACKE_dsyevd
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_int, ctypes.c_char, ctypes.c_char, ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
                   ctypes.c_void_p]

    def eigvalsh(A):
        a = np.array(A, dtype=np.float64, order="C")
        w = np.empty(a.shape[0])
        info = fn(101, b"N", b"U", a.shape[0], a.ctypes.data, a.shape[0], w.ctypes.data)
        if info != 0:
            raise RuntimeError(f"MKL dsyevd info {info}")
        return w

    return eigvalsh


def main(sizes, repeat=2, with_jax=True, mkl=None):
    from statistics import median

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
          f"{'yes' if two_stage_available() else 'no (spectrum falls back to syevd)'}; load average "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())} (a shared machine)", flush=True)
    f = jax.jit(jnp.linalg.eigvalsh)
    mkl_eig = mkl_eigvalsh(mkl) if mkl else None
    for p in sizes:
        A = np.random.default_rng(0).standard_normal((p, p))
        A = A + A.T
        evd, two, mk = [], [], []
        for _ in range(repeat):  # interleaved: A, B, (C,) A, B, (C,)
            if mkl_eig is not None:
                t = time.perf_counter()
                w0 = mkl_eig(A)
                mk.append(time.perf_counter() - t)
            t = time.perf_counter()
            w1 = scipy.linalg.eigvalsh(A, driver="evd")
            evd.append(time.perf_counter() - t)
            t = time.perf_counter()
            w2 = spectrum(A)
            two.append(time.perf_counter() - t)
        t_evd, t_two = median(evd), median(two)
        scale = np.max(np.abs(w1))
        err2 = np.max(np.abs(np.sort(w1) - np.sort(w2))) / scale
        line = (f"p = {p}: scipy syevd {t_evd:.2f} s (runs {', '.join(f'{x:.1f}' for x in evd)}); hessrank "
                f"spectrum (syevd_2stage) {t_two:.2f} s (runs {', '.join(f'{x:.1f}' for x in two)}), "
                f"{t_evd / t_two:.2f}x (fastest runs {min(evd):.1f} against {min(two):.1f} s); "
                f"max |difference| / max|λ| {err2:.1e}")
        if mk:
            err0 = np.max(np.abs(np.sort(w1) - np.sort(w0))) / scale
            line += (f"; MKL dsyevd {median(mk):.2f} s (runs {', '.join(f'{x:.1f}' for x in mk)}): two-stage / MKL "
                     f"{t_two / median(mk):.2f} (fastest runs {min(two) / min(mk):.2f}), {err0:.1e}")
        if with_jax:
            times = []
            for _ in range(2):  # the first call compiles
                t = time.perf_counter()
                w3 = np.asarray(f(jnp.asarray(A)).block_until_ready())
                times.append(time.perf_counter() - t)
            err3 = np.max(np.abs(np.sort(w1) - np.sort(w3))) / scale
            line += f"; jax on {jax.devices()[0].platform} {times[1]:.2f} s ({t_evd / times[1]:.1f}x, {err3:.1e})"
        print(line, flush=True)
    print(f"load average at the end {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    if any(k in os.environ for k in PINS):
        env = {k: v for k, v in os.environ.items() if k not in PINS}
        sys.exit(subprocess.run([sys.executable, *sys.argv], env=env).returncode)
    argv = sys.argv[1:]
    repeat = int(argv[argv.index("--repeat") + 1]) if "--repeat" in argv else 2
    mkl = argv[argv.index("--mkl") + 1] if "--mkl" in argv else None
    sizes = [int(a) for i, a in enumerate(argv) if a.isdigit() and (i == 0 or argv[i - 1] != "--repeat")]
    main(sizes or [4560, 8040], repeat=repeat, with_jax="--no-jax" not in argv, mkl=mkl)
