r"""Orthogonalisation for the sketch: new basis directions orthonormal to a basis ``Q``.

Rows ``Y`` (b×p) are projected out of the k orthonormal rows of ``Q`` by block classical
Gram–Schmidt, :math:`R = Y - (Y Q^\top) Q`, twice ("twice is enough"; in a block-Krylov
step the first pass skips chunks of ``Q`` whose coefficients are rounding and the second pass
runs on the kept, normalised directions only). The directions of ``R`` above a noise floor
come from the b×b Gram matrix :math:`R R^\top = V S^2 V^\top` (rows :math:`S^{-1} V^\top R`),
made orthonormal by Cholesky QR twice (:math:`U = L \tilde U`, :math:`L L^\top = U U^\top`).
All of it is BLAS-3 on b×p and b×k blocks; nothing is p×p.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg
from threadpoolctl import ThreadpoolController

from .rank import EPS

#: residual directions with singular value below NOISE_FLOOR · eps · max_i ‖ω_i H‖ are
#: floating-point noise of the products (measured: up to ~200 eps·‖ω H‖) and are not added
NOISE_FLOOR = 1e3
#: NumPy/SciPy's BLAS libraries, to limit their threads
BLAS_CONTROLLER = ThreadpoolController()
#: the slots of a work space's ``scratch`` (:meth:`~hessrank.linalg.sketch.Subspace.scratch`)
WORK, PRODUCTS, SPARE = 0, 1, 2


def serial_lapack():
    """Context in which BLAS/LAPACK run on one thread, for the small (b×b) eigen- and
    Cholesky decompositions of each round: on a busy machine several threads wait on
    each other for problems this small (``benchmarks/bench_matrix_free.py``)."""
    return BLAS_CONTROLLER.limit(limits=1, user_api="blas")


#: a round keeps directions down to this fraction of its strongest (limit of the Gram route)
_RELATIVE_KEEP = 1e-6
#: a block-Krylov step's first Gram–Schmidt pass skips basis chunks of this many rows whose
#: coefficients are all below _SKIP_BELOW·eps·max‖u H‖ (see :func:`_first_pass`)
_PASS_CHUNK = 256
_SKIP_BELOW = 4.0
#: rows whose Gram matrix is within this of the identity (max entry) need one Cholesky QR, not two
_CHOLQR_ONCE = 1e-6
#: a Krylov step's second Gram–Schmidt pass subtracts only rows with a coefficient above a level
#: between these (× eps): the lower at small p, the upper where a coefficient that large, over the
#: whole basis, moves eigenvalues by at most _SECOND_PASS_CUT_SHARE of the cut (see :func:`second_pass_level`)
_SECOND_PASS_ABOVE = 4.0
_SECOND_PASS_MAX = 16.0
_SECOND_PASS_CUT_SHARE = 1e-2


def project_out(Q: np.ndarray, Y: np.ndarray, C: np.ndarray | None = None, *, work: np.ndarray | None = None,
                 in_place: bool = False) -> np.ndarray:
    """``Y (I − QᵀQ)`` by block classical Gram–Schmidt applied twice ("twice is enough");
    ``C = Y Qᵀ`` may be given when already known; ``work``: a scratch array of ``Y``'s shape
    for the products; ``in_place``: overwrite ``Y`` with the result.

    One pass leaves rounding of order eps·√k·‖Y_i‖ of ``Q`` in row i, large relative
    to a small residual (measured: 2e-14 of ``Q`` in new basis vectors at k = 180 with
    one pass for rows that kept 10 % of their norm); the second pass removes it.
    """
    if Q.shape[0] == 0:
        return Y
    if C is None:
        C = Y @ Q.T
    work = np.empty_like(Y) if work is None else work
    R = Y if in_place else Y.copy()
    R -= np.matmul(C, Q, out=work)
    R -= np.matmul(R @ Q.T, Q, out=work)
    return R


def second_pass_level(tol: float, scale: float, k: int) -> float:
    """The coefficient (of a unit row against the k basis rows) above which a Krylov step's second
    Gram–Schmidt pass subtracts: :data:`_SECOND_PASS_ABOVE`·eps, raised up to :data:`_SECOND_PASS_MAX`·eps
    while ``level·√k·scale`` (what such coefficients over the whole basis can move an eigenvalue of
    a matrix of norm ``scale``) stays below :data:`_SECOND_PASS_CUT_SHARE` of the cut ``tol``."""
    allowed = _SECOND_PASS_CUT_SHARE * tol / (max(scale, np.finfo(float).tiny) * math.sqrt(max(k, 1)))
    return EPS * min(_SECOND_PASS_MAX, max(_SECOND_PASS_ABOVE, allowed / EPS))


def krylov_directions(W: np.ndarray, C: np.ndarray, space, floor: float, scale: float,
                       level: float = _SECOND_PASS_ABOVE * EPS) -> np.ndarray:
    """:func:`new_directions` of ``W (I − QᵀQ)`` (``C = W Qᵀ``) with the second Gram–Schmidt
    pass on the kept directions instead of on the whole block. ``W`` is overwritten.

    One pass leaves ~eps·√k·‖W_i‖ of ``Q`` in row i; the floor (KRYLOV_FLOOR·eps·‖H‖) is
    far above that for any k ≤ 10⁸, so the directions kept and their singular values are
    those of the exact residual to a fraction of the floor, and one more pass on each kept
    (normalised) direction leaves ~eps·√k of ``Q`` in it: "twice is enough", applied to
    the ≤ b new basis vectors rather than the b rows of ``W`` — and it replaces the extra
    pass that weak directions needed. Where a kept direction lost more than a tenth of its
    norm to that pass (the one-pass estimate was not good enough) the block is redone with
    two passes first. Only probe rounds certify, so this changes no rank, only which
    directions a Krylov step proposes. The b×p temporaries live in ``space``'s scratch.
    """
    Q = space.Q
    if Q.shape[0] == 0:
        return new_directions(W, Q, floor, scale)
    R = _first_pass(W, C[:, :Q.shape[0]], Q, scale, space.scratch(WORK, W.shape[0]))
    out = space.next_rows(R.shape[0])
    U, _ = _kept_directions(R, floor, scale, space.scratch(SPARE, R.shape[0]) if out is None else out)
    if U.shape[0] == 0:
        return U
    _second_pass(U, Q, space.scratch(WORK, U.shape[0]), level)
    if float(np.min(row_norms(U))) < 0.9:
        R -= (R @ Q.T) @ Q
        return new_directions(R, Q, floor, scale)
    return cholesky_qr2(U, in_place=True)   # in Q's next rows (or scratch): appended without a copy


def _first_pass(W: np.ndarray, C: np.ndarray, Q: np.ndarray, scale: float, out: np.ndarray) -> np.ndarray:
    """``W − C Q`` in place (``C = W Qᵀ``), skipping the chunks of :data:`_PASS_CHUNK` basis rows
    whose coefficients in ``C`` are all below :data:`_SKIP_BELOW`·eps·``scale``.

    A block-Krylov step's ``W = U H`` is, in exact arithmetic, orthogonal to every basis row
    but those of the last few blocks (the three-term recurrence of block Lanczos); measured:
    the older coefficients are 0.1–0.3 eps of ``max‖u H‖``, the rounding of ``C`` itself. What
    is skipped is then below the rounding a full pass leaves (eps·√k·‖W_i‖) times a few, far
    below the Krylov floor, and the second pass on the kept directions removes it; where a
    coefficient is larger (a chain that dropped directions) its chunk is projected as usual."""
    k = Q.shape[0]
    big = np.abs(C).max(axis=0) > _SKIP_BELOW * EPS * scale if k > _PASS_CHUNK else np.ones(k, dtype=bool)
    _subtract_runs(W, C, Q, _marked_chunks(big), out)
    return W


def _subtract_runs(W: np.ndarray, C: np.ndarray, Q: np.ndarray, chunks: np.ndarray, out: np.ndarray) -> None:
    """``W −= C Q`` restricted to the chunks of :data:`_PASS_CHUNK` rows of ``Q`` marked in ``chunks``,
    one GEMM per run of marked chunks (``out``: scratch of ``W``'s shape)."""
    for a, b in runs(chunks, _PASS_CHUNK, Q.shape[0]):
        W -= np.matmul(C[:, a:b], Q[a:b], out=out)


def _marked_chunks(columns: np.ndarray) -> np.ndarray:
    """Which chunks of :data:`_PASS_CHUNK` basis rows hold a marked column."""
    return np.logical_or.reduceat(columns, np.arange(0, columns.size, _PASS_CHUNK)) if columns.size else columns


def runs(marked, size: int, end: int):
    """``(start, stop)`` row ranges of the runs of marked chunks of ``size`` rows (capped at ``end``)."""
    start = None
    for j, use in enumerate([*map(bool, marked), False]):
        if use and start is None:
            start = j
        elif not use and start is not None:
            yield start * size, min(j * size, end)
            start = None


def _second_pass(U: np.ndarray, Q: np.ndarray, out: np.ndarray, level: float = _SECOND_PASS_ABOVE * EPS) -> None:
    """``U −= (U Qᵀ) Q`` in place for the unit rows ``U``, on the rows and chunks of :data:`_PASS_CHUNK`
    basis rows that hold a coefficient above ``level`` (:func:`second_pass_level`, 4–16 eps): the rest
    are orthogonal to ``Q`` to that level already (the coefficients are measured, not assumed; at
    p = 110,100 after the first pass nearly all are 0.1–16 eps)."""
    D = U @ Q.T
    big = np.abs(D) > level
    rows = np.flatnonzero(big.any(axis=1))
    if rows.size == 0:
        return
    chunks = _marked_chunks(big.any(axis=0))
    if rows.size == U.shape[0]:
        _subtract_runs(U, D, Q, chunks, out)
    else:
        part = U[rows]
        _subtract_runs(part, D[rows], Q, chunks, out[:rows.size])
        U[rows] = part


def cholesky_qr2(U: np.ndarray, *, in_place: bool = False) -> np.ndarray:
    """Orthonormal rows spanning the rows of the well-conditioned ``U``: Cholesky QR twice
    (``in_place``: ``U``, C-contiguous, is overwritten and returned). Once only when ``U``'s
    rows are already orthonormal to :data:`_CHOLQR_ONCE` (Cholesky QR loses ~κ²·eps of
    orthogonality, κ = 1 + O(that) here): the directions a round keeps are unit combinations
    of its residual's right singular vectors, orthonormal up to rounding."""
    for sweep in range(2):  # Cholesky QR twice ("CholQR2"): orthonormal to a few eps
        G = U @ U.T
        once = sweep == 0 and float(np.max(np.abs(G - np.eye(G.shape[0])), initial=0.0)) < _CHOLQR_ONCE
        with serial_lapack():
            L = np.linalg.cholesky(G)               # U = L Ũ with Ũ orthonormal
            if in_place:  # Ũᵀ = Uᵀ L⁻ᵀ on the Fortran view of the rows: no copy
                X = scipy.linalg.blas.dtrsm(1.0, L, U.T, side=1, lower=1, trans_a=1, overwrite_b=1)
                if not np.shares_memory(X, U):      # BLAS made a copy after all
                    U = X.T
            else:
                U = scipy.linalg.solve_triangular(L, U, lower=True, check_finite=False)
        if once:
            break
    return np.ascontiguousarray(U)


def new_directions(R: np.ndarray, Q: np.ndarray, floor: float, scale: float, *,
                    out: np.ndarray | None = None) -> np.ndarray:
    """Orthonormal rows spanning the part of span(rows of ``R``) above ``floor``, orthogonal to ``Q``.

    Rank-revealing through the b×b Gram matrix ``R Rᵀ`` (all BLAS-3, unlike a Householder
    QR of the tall p×b block): the directions of :func:`_kept_directions` (those with
    singular value above ``floor`` and 1e-6 of the strongest, then those the strong ones
    hid, above the noise floor), made orthonormal to working precision by Cholesky QR, twice.
    ``scale``: the largest norm of a row before its
    projection against ``Q`` (the floor of numerically zero directions is relative to it).
    ``out``: rows (at least as many as ``R``'s) the directions are computed in (e.g.
    :meth:`Subspace.next_rows`); the result is then a view of them.
    """
    U, s = _kept_directions(R, floor, scale, out)
    if U.shape[0] == 0:
        return U
    # after two projections R still holds ~eps·‖R_i‖ of Q; in a direction of singular
    # value s that is ~eps·max‖R_i‖/s once normalised: project weak directions once more.
    # A residual at the rounding level of its input (rho < 1e-8·scale) was numerically
    # inside span(Q): its directions are mostly rounding of Q, and what the projection leaves
    # of them can be far from orthonormal, so that Cholesky QR amplifies what is left of Q
    # in them: project all of it, orthonormalise, and project and orthonormalise once more.
    rho = float(np.max(row_norms(R)))
    weak = s < rho / 10
    noise = rho < 1e-8 * scale
    if noise:
        weak[:] = True
    if Q.shape[0] and weak.any():
        U[weak] -= (U[weak] @ Q.T) @ Q
    U = cholesky_qr2(U, in_place=out is not None)
    if noise and Q.shape[0]:
        U -= (U @ Q.T) @ Q
        U = cholesky_qr2(U, in_place=out is not None)
    return U


def _kept_directions(R: np.ndarray, floor: float, scale: float, out: np.ndarray | None = None):
    """``(U, s)``: unit rows spanning the directions of ``R`` above ``floor`` and their singular values.

    First the strong ones (:func:`_strong_directions`: the Gram route resolves singular values
    down to :data:`_RELATIVE_KEEP` of the strongest). Where it dropped directions and that limit
    lies above ``floor``, the rest of ``R`` may hold more above the floor: the strong directions
    are projected out of ``R`` and the remainder's own Gram matrix, relative to its own
    strongest, gives the weaker ones (measured at p = 110,100: the last step of a Krylov chain
    kept 7 of 128 and dropped ~80 at 1e-7–1e-5 of ‖H‖ that three later probe rounds then had to
    find). Rows ``U`` are unit combinations of ``R``'s rows, the strong and the weak ones
    orthogonal up to rounding (made orthonormal by the caller's Cholesky QR). ``out``: rows (as
    many as ``R``'s) the directions are computed in; ``U`` is then a view of them. ``scale``: the
    largest norm of a row before its projection.
    """
    b, p = R.shape
    s, V, keep = _strong_directions(R, floor, scale)
    m = int(keep.sum())
    if m == 0:
        return np.zeros((0, p)), s[keep]
    U = np.matmul((V[:, keep] / s[keep]).T, R, out=None if out is None else out[:m])
    # the weaker ones only above the noise floor of the input (measured noise of the products:
    # up to ~200 eps of it), even where the caller's floor is lower (a small p, completing a
    # basis), and not from a residual that is itself rounding: rounding is not a direction
    floor = max(floor, NOISE_FLOOR * EPS * scale)
    if m == b or _RELATIVE_KEEP * s[-1] <= floor or float(np.max(row_norms(R))) < 1e-8 * scale:
        return U, s[keep]
    # R without its strong directions: U orthonormal first (the Gram route's weakest rows span
    # their directions only to ~eps·(s_max/s)², which would come back as "weak directions")
    Uo = cholesky_qr2(U, in_place=out is not None)
    if out is not None and not np.shares_memory(Uo, out):
        out[:m] = Uo
        Uo = out[:m]
    U = Uo
    rest = R - (R @ U.T) @ U
    s2, V2, keep2 = _strong_directions(rest, floor, scale)
    m2 = min(int(keep2.sum()), b - m)
    if m2 == 0:
        return U, s[keep]
    order = np.flatnonzero(keep2)[::-1][:m2]      # the strongest of the rest
    weak = (V2[:, order] / s2[order]).T
    if out is None:
        return np.vstack([U, weak @ rest]), np.r_[s[keep], s2[order]]
    np.matmul(weak, rest, out=out[m:m + m2])
    return out[:m + m2], np.r_[s[keep], s2[order]]


def _strong_directions(R: np.ndarray, floor: float, scale: float):
    """``(s, V, keep)``: the singular values ``s`` and right factors ``V`` of the rows of ``R``
    from the b×b Gram matrix ``R Rᵀ``, and which directions are kept (``s`` above ``floor``,
    above 1e-6 of the strongest, and above rounding of ``scale``); none when ``R`` is zero."""
    G = R @ R.T
    with serial_lapack():
        s2, V = scipy.linalg.eigh(G, driver="evr", check_finite=False)
    s = np.sqrt(np.clip(s2, 0.0, None))
    if s.size == 0 or s[-1] == 0.0:
        return s, V, np.zeros(s.shape, dtype=bool)
    return s, V, s > max(floor, _RELATIVE_KEEP * s[-1], EPS * scale)


def row_norms(V: np.ndarray) -> np.ndarray:
    """Euclidean norms of the rows of ``V`` without a temporary of V's size (``np.linalg.norm``
    squares into a new b×p array: 4× slower at p = 110,100)."""
    return np.sqrt(np.einsum("ij,ij->i", V, V))
