"""Eigenvalues of a symmetric matrix by LAPACK's two-stage tridiagonal reduction.

``dsyevd_2stage`` reduces the matrix to band form with BLAS-3 kernels and then to
tridiagonal form, where the classic ``dsyevd`` (SciPy's ``eigvalsh``) spends most of
its time in the memory-bound BLAS-2 part of a one-stage reduction. LAPACK provides the
two-stage driver for eigenvalues only, which is what a rank needs. SciPy does not wrap
it, but the OpenBLAS that SciPy's wheels ship exports it (as ``scipy_LAPACKE_…``), so it
is called here through ``ctypes``; where that library is absent (another LAPACK), the
caller falls back to SciPy. Speed against ``syevd``: ``benchmarks/bench_eig.py``.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os

import numpy as np

_ROW_MAJOR = 101
#: LAPACKE's 32-bit integers index n² elements
_MAX_N = 46_000


@functools.cache
def _driver():
    """The ``LAPACKE_dsyevd_2stage`` of SciPy's bundled OpenBLAS, or ``None``."""
    try:
        import scipy
    except ImportError:  # pragma: no cover - scipy is a dependency
        return None
    folder = os.path.dirname(scipy.__file__) + ".libs"
    for path in sorted(glob.glob(os.path.join(folder, "libscipy_openblas*.so*"))):
        try:
            lib = ctypes.CDLL(path)
            fn = lib.scipy_LAPACKE_dsyevd_2stage
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.c_int, ctypes.c_char, ctypes.c_char, ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
                       ctypes.c_void_p]
        return fn
    return None


def two_stage_available() -> bool:
    """Whether :func:`eigvalsh_2stage` can run here."""
    return _driver() is not None


def eigvalsh_2stage(H, *, overwrite: bool = False) -> np.ndarray | None:
    """Eigenvalues (ascending) of the symmetric float64 matrix ``H`` (its upper triangle is
    read), or ``None`` when the two-stage driver is not available or ``H`` is too large
    for it. ``overwrite=True`` lets LAPACK destroy ``H`` when it is a C-contiguous float64
    array (no copy)."""
    fn = _driver()
    n = H.shape[0]
    if fn is None or n > _MAX_N or n == 0:
        return None
    if overwrite and isinstance(H, np.ndarray) and H.dtype == np.float64 and H.flags.c_contiguous \
            and H.flags.writeable:
        A = H
    else:
        A = np.array(H, dtype=np.float64, order="C", copy=True)
    w = np.empty(n, dtype=np.float64)
    # the upper triangle of the C array: the triangle SciPy's eigvalsh (lower, column-major) reads
    info = fn(_ROW_MAJOR, b"N", b"U", n, A.ctypes.data, n, w.ctypes.data)
    if info != 0:
        return None
    return w
