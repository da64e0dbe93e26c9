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

#: LAPACKE's column-major layout: LAPACK itself, without the transposed copy (n² floats) that
#: LAPACKE makes of a row-major matrix
_COL_MAJOR = 102
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
    for it. ``overwrite=True`` lets LAPACK destroy ``H``'s upper triangle and diagonal (the
    strictly lower triangle is left as it was) when ``H`` is a float64 array with contiguous
    rows, e.g. the leading block of a larger C array: no copy."""
    fn = _driver()
    n = H.shape[0]
    if fn is None or n > _MAX_N or n == 0:
        return None
    if overwrite and _in_place_ok(H):
        A = H
    else:
        A = np.array(H, dtype=np.float64, order="C", copy=True)
    w = np.empty(n, dtype=np.float64)
    # the upper triangle of the C array is the lower triangle of the same memory read column-major
    # (the triangle SciPy's eigvalsh reads): LAPACK directly, rows of A as its columns
    info = fn(_COL_MAJOR, b"N", b"L", n, A.ctypes.data, A.strides[0] // 8, w.ctypes.data)
    if info != 0:
        return None
    return w


def _in_place_ok(H) -> bool:
    """Whether :func:`eigvalsh_2stage` can work on ``H``'s own memory: a writeable float64 array
    of contiguous rows (any row stride, e.g. a leading block)."""
    return (isinstance(H, np.ndarray) and H.dtype == np.float64 and H.ndim == 2 and H.flags.writeable
            and H.strides[1] == 8 and H.strides[0] % 8 == 0 and H.strides[0] >= 8 * H.shape[1])
