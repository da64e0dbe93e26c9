r"""Numerical rank of a symmetric matrix, with the tolerance used and the gap at the cut.

Rank = number of eigenvalues with :math:`|\lambda| > \mathrm{tol}`. The default
tolerance is NumPy's ``matrix_rank`` rule, :math:`\mathrm{tol} = \max|\lambda| \cdot
p \cdot \varepsilon_{64}`; ``rtol`` replaces the factor :math:`p\,\varepsilon`, ``atol``
is an absolute floor, and with both the larger wins. The gap at the cut is
:math:`\log_{10}(|\lambda_r| / |\lambda_{r+1}|)` in decades, eigenvalues ordered by
magnitude: a linear network shows a cliff of many decades, a non-linear one may not.

``scale`` replaces :math:`\max|\lambda|` by a larger magnitude when the matrix is a
difference of larger terms (:math:`H_F` at a least-squares minimum of a linear network
is zero in exact arithmetic, its own :math:`\max|\lambda|` is rounding, and a cut
relative to it counts rounding): the cut is then :math:`\max(\max|\lambda|,
\text{scale}) \cdot p \cdot \varepsilon_{64}` (``rtol`` likewise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

from ..config import check_tolerances
from ..errors import ConfigError, DataError
from .lapack import eigvalsh_2stage

EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class RankInfo:
    """``rank`` of a ``size``×``size`` matrix, the ``tol`` used, the ``gap_decades`` at
    the cut (``None`` when the rank is 0 or full, ``inf`` when the next eigenvalue is
    exactly 0), the ``eigenvalues`` sorted by decreasing magnitude and the ``scale`` the
    relative cut was taken against when it is larger than their largest magnitude (0: their own)."""

    rank: int
    tol: float
    gap_decades: float | None
    eigenvalues: np.ndarray = field(repr=False)
    size: int
    scale: float = 0.0

    def to_dict(self) -> dict:
        """``{"rank", "tol", "gap_decades", "size"}`` as JSON-ready values (no eigenvalues; an
        infinite gap is ``None``)."""
        gap = self.gap_decades
        return {"rank": self.rank, "tol": float(self.tol),
                "gap_decades": None if gap is None or not math.isfinite(gap) else float(gap), "size": self.size}


#: the sketch's Ritz values (:meth:`~hessrank.linalg.sketch.Subspace.ritz_values`) take the
#: two-stage eigensolver from this size on, ``syevd`` below (``benchmarks/bench_eig.py``, this
#: 2-core machine: two-stage 1.4× faster at 3800 and 1.3–1.8× at 4560–8040; ``syevd`` faster
#: below, 0.09 against 0.13 s at 1500). Dense ranks keep the two-stage driver at every size.
RITZ_TWO_STAGE_FROM = 3000


def spectrum(H, *, overwrite: bool = False, two_stage_from: int = 0) -> np.ndarray:
    """Eigenvalues of the symmetric matrix ``H``, ascending: for ``H`` of at least
    ``two_stage_from`` rows LAPACK's two-stage ``syevd_2stage`` where SciPy's OpenBLAS
    provides it (:mod:`.lapack`), else ``syevd``."""
    H = np.asarray(H, dtype=np.float64)
    w = eigvalsh_2stage(H, overwrite=overwrite) if H.shape[0] >= two_stage_from else None
    if w is not None:
        return w
    return scipy.linalg.eigvalsh(H, overwrite_a=overwrite, check_finite=False, driver="evd")


#: ``|H − Hᵀ|`` beyond this fraction of ``|H|`` (largest entries) means ``H`` is not symmetric
ASYMMETRY_TOL = 1e-8


def tolerance(max_abs: float, size: int, *, rtol: float | None = None, atol: float | None = None) -> float:
    """The cut: ``max|λ|·size·eps`` by default; ``rtol·max|λ|``; ``atol``; or the larger of both."""
    if rtol is None and atol is None:
        return max_abs * size * EPS
    rel = rtol * max_abs if rtol is not None else 0.0
    return max(rel, atol if atol is not None else 0.0)


def cut_at_scale(size: int, scale: float, *, rtol: float | None = None,
                 atol: float | None = None) -> tuple[float | None, float | None]:
    """``(rtol, atol)`` whose cut, by :func:`tolerance` on any ``max|λ|``, is the cut at
    ``max(max|λ|, scale)``: for solvers that take only ``rtol`` and ``atol``."""
    if rtol is None and atol is None:
        return size * EPS, scale * size * EPS
    if rtol is None:
        return None, atol
    return rtol, max(rtol * scale, atol if atol is not None else 0.0)


def rank_from_eigenvalues(eigenvalues, size: int | None = None, *, rtol: float | None = None,
                          atol: float | None = None, scale: float = 0.0) -> RankInfo:
    """:class:`RankInfo` from eigenvalues of a ``size``×``size`` symmetric matrix.

    ``eigenvalues`` may hold only the possibly non-zero part of the spectrum (e.g.
    from a Gram matrix); the missing ``size - len(eigenvalues)`` ones are exact zeros.
    ``scale``: the relative cut is taken against ``max(max|λ|, scale)`` (see the module docstring).
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    _refuse_non_finite(lam, "eigenvalues")
    size = lam.size if size is None else int(size)
    lam = lam[np.argsort(-np.abs(lam), kind="stable")]
    mags = np.abs(lam)
    max_abs = float(mags[0]) if mags.size else 0.0
    scale = float(scale) if scale > max_abs else 0.0
    tol = tolerance(max(max_abs, scale), size, rtol=rtol, atol=atol)
    rank = int(np.count_nonzero(mags > tol))
    gap = None
    if 0 < rank < size:
        below = float(mags[rank]) if rank < mags.size else 0.0
        gap = math.inf if below == 0.0 else math.log10(float(mags[rank - 1]) / below)
    return RankInfo(rank=rank, tol=float(tol), gap_decades=gap, eigenvalues=lam, size=size, scale=scale)


def _refuse_non_finite(a: np.ndarray, what: str) -> None:
    """A rank of values that are not numbers is not a rank: raise :class:`DataError`."""
    if a.size and not np.isfinite(a).all():
        raise non_finite_error(a, what)


def non_finite_error(a: np.ndarray, what: str) -> DataError:
    """The :class:`DataError` for ``a`` (named ``what``) holding NaN or infinite values: an
    overflow (infinities) is told apart from derivatives undefined where they are taken (NaN only)."""
    bad = int(np.count_nonzero(~np.isfinite(a)))
    if np.isinf(a).any():
        why = "the loss or its derivatives overflow float64 at these data and parameters (scale the data down)"
    else:  # NaN without overflow: 0/0, sqrt or log at 0, a derivative undefined where it is taken
        why = ("the model's derivatives are NaN at these parameters and data (e.g. 0/0, or sqrt or log at 0 "
               "in the model)")
    return DataError(f"the {what} hold {bad} NaN or infinite value(s) of {a.size}: {why}; no rank is defined")


def numerical_rank(H, *, rtol: float | None = None, atol: float | None = None,
                   overwrite: bool = False) -> RankInfo:
    """Numerical rank of the symmetric matrix ``H`` by a symmetric eigensolver.

    Rank = the number of eigenvalues with ``|λ| > tol``, ``tol = max|λ|·p·eps`` by default
    (``numpy.linalg.matrix_rank(H, hermitian=True)``'s rule).

    Args:
        H: a symmetric p×p array.
        rtol: relative tolerance, ``tol = rtol·max|λ|`` (replaces ``p·eps``).
        atol: absolute tolerance; with ``rtol`` the larger of the two cuts.
        overwrite: let LAPACK destroy ``H`` to save one p×p copy.

    Returns:
        a :class:`RankInfo`: ``rank``, ``tol``, ``gap_decades`` at the cut, the ``eigenvalues``
        by decreasing magnitude.

    Raises:
        ConfigError: ``H`` is not a real square matrix, is not symmetric (beyond
            :data:`ASYMMETRY_TOL` of its largest entry), or a tolerance is not a finite number >= 0.
        DataError: ``H`` holds NaN or infinite values.
    """
    H = np.asarray(H)
    check_tolerances(rtol, atol)
    if H.ndim == 2 and H.shape[0] == H.shape[1] and np.iscomplexobj(H):
        raise ConfigError.about("H", f"complex entries ({H.dtype}): numerical_rank takes real symmetric matrices")
    return symmetric_rank(H, rtol=rtol, atol=atol, overwrite=overwrite, check_symmetry=True)


def symmetric_rank(H, *, rtol: float | None = None, atol: float | None = None, overwrite: bool = False,
                   check_symmetry: bool = False) -> RankInfo:
    """:func:`numerical_rank` of a matrix the caller built symmetric (the engine's Hessians):
    the shape and finiteness are checked, the symmetry only with ``check_symmetry``."""
    H = np.asarray(H)
    if H.ndim != 2 or H.shape[0] != H.shape[1]:
        raise ConfigError.invalid("H", H.shape, "numerical_rank needs a square matrix", quoted=False)
    _refuse_non_finite(H, "matrix")
    if check_symmetry and H.size:
        skew, scale = _asymmetry(H), float(np.max(np.abs(H)))
        if skew > ASYMMETRY_TOL * scale:
            raise ConfigError.about("H", f"not symmetric: max|H − Hᵀ| = {skew:.2g} against max|H| = {scale:.2g}; "
                                         "symmetrise it ((H + H.T) / 2) if that is round-off")
    return rank_from_eigenvalues(spectrum(H, overwrite=overwrite), H.shape[0], rtol=rtol, atol=atol)


def _asymmetry(H: np.ndarray, rows: int = 256) -> float:
    """``max|H − Hᵀ|``, a block of rows at a time (no p×p temporary)."""
    return max(float(np.max(np.abs(H[i:i + rows] - H[:, i:i + rows].T))) for i in range(0, H.shape[0], rows))


def covariance_rank(X, *, rtol: float | None = None, atol: float | None = None) -> RankInfo:
    """``r = rank(Σ_i x_i x_iᵀ)`` for inputs ``X`` of shape (n, d), by the same rule."""
    X = np.asarray(X, dtype=np.float64)
    check_tolerances(rtol, atol)
    return symmetric_rank(X.T @ X, rtol=rtol, atol=atol, overwrite=True)


#: relative tolerances of the rank-against-tolerance table: 1e-16, 1e-15, …, 1e-2
RTOL_SCAN = tuple(10.0 ** -e for e in range(16, 1, -1))


def ranks_at_rtols(info: RankInfo, rtols=RTOL_SCAN, *, resolved_below: float = 0.0) -> list[int | None]:
    """The rank at each relative tolerance: the count of ``|λ| > rtol·max|λ|`` over
    ``info``'s eigenvalues (those not listed are zeros; ``max|λ|`` raised to ``info.scale``).
    Where the cut ``rtol·max|λ|`` is at most ``resolved_below`` (e.g. ``2δ`` of a matrix-free sketch, below which
    eigenvalues are not resolved) the rank is not known and is ``None``."""
    mags = np.abs(np.asarray(info.eigenvalues, dtype=np.float64))
    max_abs = max(float(mags.max()) if mags.size else 0.0, info.scale)
    out = []
    for rtol in rtols:
        cut = float(rtol) * max_abs
        out.append(None if (resolved_below > 0 and cut <= resolved_below) else int(np.count_nonzero(mags > cut)))
    return out
