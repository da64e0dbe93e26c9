r"""Certified numerical rank of a symmetric matrix known only through products with vectors.

A randomized range sketch that grows until a probabilistic certificate says that it
holds every eigenvalue above the cut. Vectors are the rows of (·, p) arrays.

The basis :math:`Q \in \mathbb{R}^{k\times p}` has orthonormal rows and
:math:`T = Q H Q^\top` (k×k) is its Rayleigh quotient. One round:

1. probe: :math:`\Omega \in \mathbb{R}^{b\times p}` Gaussian, :math:`Y = \Omega H`;
2. residual: :math:`R = Y (I - Q^\top Q)` (block classical Gram–Schmidt, twice; in a
   block-Krylov step the second pass runs on the kept, normalised directions only);
3. bound: :math:`\delta = \alpha\sqrt{2/\pi}\,\max_i \lVert R_i\rVert` bounds
   :math:`\lVert (I - Q^\top Q) H\rVert` with probability at least :math:`1 - \alpha^{-b}`
   (Halko, Martinsson & Tropp 2011, Lemma 4.1); :math:`\alpha = 10^{12/b}` makes that
   :math:`1 - 10^{-12}` (b = 32 probes: α = 2.4; b = 128: α = 1.24);
4. certificate: :math:`H - Q^\top T Q` has norm at most :math:`2\delta`, so by Weyl's
   inequality every eigenvalue of :math:`H` lies within :math:`2\delta` of one of
   the Ritz values :math:`\theta` (eigenvalues of :math:`T`) or of the :math:`p-k`
   zeros. When no :math:`|\theta_i|`, and not 0, lies within :math:`2\delta` of the
   cut :math:`\mathrm{tol}`, the number of :math:`|\theta_i| > \mathrm{tol}` *is* the
   number of :math:`|\lambda_i| > \mathrm{tol}`: the rank is certified;
5. otherwise the directions of :math:`R` above the floating-point noise join
   :math:`Q`, and :math:`T` grows by :math:`Q (U H)^\top` for the new rows :math:`U`;
   what :math:`U H` holds outside the basis is the next block (block-Krylov steps)
   until that runs dry, then the next probe round. In a block-Krylov step most of
   :math:`Q (U H)^\top` is rounding (block Lanczos' three-term recurrence): it is
   computed only on the chunks of basis rows that a Gaussian summary of each chunk says
   hold more (:meth:`Subspace.append`), and the second Gram–Schmidt pass only where its
   measured coefficients exceed a few eps.

"Certified" is up to the floating-point error of the products themselves, which the
dense matrices carry as well (measured: 1–50 eps·max|λ|, far below the cut).

The cut is the dense rule of :mod:`hessrank.rank` (``max|λ|·p·eps``, ``rtol``,
``atol``) with ``p`` the full size, applied to the Ritz values by
:func:`~hessrank.linalg.rank_from_eigenvalues`; eigenvalues outside the basis are
at most :math:`2\delta` and are counted as zeros. A basis that reaches ``k = p``
is complete: :math:`T` is then an orthogonal similarity of :math:`H` and nothing
is left to certify. Memory: the k×p basis, its chunk summaries (k/32 rows of p) and
the k×k matrix :math:`T`, never p×p.
"""

from __future__ import annotations

import math
import mmap
import time
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.linalg
from threadpoolctl import ThreadpoolController

from ..errors import ConfigError
from .lapack import eigvalsh_2stage, two_stage_available
from .operator import as_operator
from .rank import EPS, RITZ_TWO_STAGE_FROM, RankInfo, _refuse_non_finite, rank_from_eigenvalues, spectrum, tolerance

#: the chance that a certificate is wrong (the Gaussian probes missed a direction)
FAILURE_PROBABILITY = 1e-12
#: residual directions with singular value below NOISE_FLOOR · eps · max_i ‖ω_i H‖ are
#: floating-point noise of the products (measured: up to ~200 eps·‖ω H‖) and are not added
NOISE_FLOOR = 1e3
#: the same for a block-Krylov step, relative to max ‖u H‖ over unit u seen so far: the
#: residual of W = U H after projection against k vectors holds rounding of the
#: projection (measured up to ~600 eps·‖W‖ at k = 1500); a direction below it that
#: matters is found by the next Gaussian probe round
KRYLOV_FLOOR = 1e4
#: the operator must be symmetric: on the probes, ``|(ΩH)Ωᵀ − ((ΩH)Ωᵀ)ᵀ|`` at most this
#: times ``max‖ω_i H‖·max‖ω_j‖`` (rounding of Hessian-vector products is ~1e-15 of that)
SYMMETRY_TOL = 1e-8
#: a certificate's states: every eigenvalue above the cut is in the basis (with probability
#: ≥ 1 − FAILURE_PROBABILITY); the basis spans everything (no probability); neither, with
#: the reason after a colon (the rank shown is then a lower bound)
CERTIFIED = "certified"
COMPLETE_BASIS = "complete basis"
NOT_CERTIFIED = "not certified"
#: NumPy/SciPy's BLAS libraries, to limit their threads
BLAS_CONTROLLER = ThreadpoolController()


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
#: rows per block when T's upper triangle is rebuilt after its eigenvalues (:meth:`Subspace.ritz_values`)
_RESTORE_ROWS = 512
#: the slots of :meth:`Subspace.scratch`
_WORK, _PRODUCTS, _SPARE = 0, 1, 2
#: rows whose Gram matrix is within this of the identity (max entry) need one Cholesky QR, not two
_CHOLQR_ONCE = 1e-6
#: the basis is summarised in chunks of SKETCH_CHUNK rows by SKETCH_ROWS Gaussian combinations
#: each (:meth:`Subspace.append`): a block-Krylov step computes the new rows of T only on the
#: chunks whose summary says they hold more than rounding
SKETCH_CHUNK = 256
SKETCH_ROWS = 8
#: a chunk's entries of T are skipped (left 0) when the estimated norm of each new row on it is at
#: most _T_SKIP_BELOW·eps·max‖u H‖ and at most _T_SKIP_CUT_SHARE of the cut (rounding is 1–10 eps·‖H‖)
_T_SKIP_BELOW = 64.0
_T_SKIP_CUT_SHARE = 1e-3
#: a Krylov step's second Gram–Schmidt pass subtracts only rows with a coefficient above a level
#: between these (× eps): the lower at small p, the upper where a coefficient that large, over the
#: whole basis, moves eigenvalues by at most _SECOND_PASS_CUT_SHARE of the cut (see :func:`second_pass_level`)
_SECOND_PASS_ABOVE = 4.0
_SECOND_PASS_MAX = 16.0
_SECOND_PASS_CUT_SHARE = 1e-2


@dataclass(frozen=True)
class Certificate:
    """How a matrix-free rank was obtained.

    ``columns``: dimension k of the basis; ``matvecs``: products with the matrix;
    ``residual_bound``: δ ≥ ‖(I − P) H‖ with probability ≥ ``1 − failure_probability``
    (0 for a complete basis); ``status``: ``certified``, ``complete basis``, or
    ``not certified: …`` with the reason; ``certified`` is False only in the last case;
    ``probe_rounds``: rounds of Gaussian probes; ``seconds``: time in products, orthogonalisation
    and eigenvalues.
    """

    columns: int
    matvecs: int
    residual_bound: float
    failure_probability: float
    status: str
    probe_rounds: int = 0
    seconds: dict = field(default_factory=dict)

    @property
    def certified(self) -> bool:
        """Whether the rank is certified (or the basis complete)."""
        return not self.status.startswith(NOT_CERTIFIED)

    def to_dict(self) -> dict:
        """The certificate as JSON-ready values."""
        return {"columns": self.columns, "matvecs": self.matvecs, "residual_bound": self.residual_bound,
                "failure_probability": self.failure_probability, "status": self.status,
                "certified": self.certified, "probe_rounds": self.probe_rounds, "seconds": self.seconds}


@dataclass
class Subspace:
    """Orthonormal rows ``Q`` (k×p) and ``T = Q H Qᵀ`` (k×k), grown in place.

    Buffers for ``capacity`` rows are reserved up front; only the rows in use are
    touched, so they cost physical memory only as the basis grows.
    """

    p: int
    capacity: int
    _Q: np.ndarray = field(init=False, repr=False)
    _T: np.ndarray = field(init=False, repr=False)
    _scratch: dict = field(init=False, repr=False, default_factory=dict)
    _S: np.ndarray = field(init=False, repr=False)
    _G: list = field(init=False, repr=False, default_factory=list)
    k: int = 0
    #: rows of T left at 0 by :meth:`append` (entries estimated at rounding level), for the record
    skipped_entries: int = 0

    def __post_init__(self):
        self.capacity = int(min(self.capacity, self.p))
        self._Q = _reserve((self.capacity, self.p))
        self._T = _reserve((self.capacity, self.capacity))
        self._S = _reserve((-(-self.capacity // SKETCH_CHUNK) * SKETCH_ROWS, self.p))

    @property
    def Q(self) -> np.ndarray:
        """The basis: k orthonormal rows of length p."""
        return self._Q[:self.k]

    @property
    def T(self) -> np.ndarray:
        """The k×k Rayleigh quotient ``Q H Qᵀ``."""
        return self._T[:self.k, :self.k]

    def append(self, U: np.ndarray, W: np.ndarray, *, skip_below: float | None = None) -> np.ndarray:
        """Add orthonormal rows ``U`` (orthogonal to ``Q``) with ``W = U H``; extend ``T``;
        return ``W Qᵀ`` (the new rows of ``T``, against the extended ``Q``).

        ``skip_below``: entries on a chunk of :data:`SKETCH_CHUNK` old rows whose estimated
        norm (per row of ``W``) is at most this are not computed but left 0 — in a block-Krylov
        step ``U H`` is, in exact arithmetic, orthogonal to all but the last blocks (the
        three-term recurrence of block Lanczos), so most chunks hold rounding only. The
        estimate is ``‖W Q_cᵀ G_cᵀ‖/√m`` with ``G_c`` Gaussian (m = :data:`SKETCH_ROWS`): its
        square is ``‖W_i Q_cᵀ‖²·χ²_m/m``, so a chunk of norm above 32·``skip_below`` is
        skipped with probability below 1e-11 (a χ²₈ variable below 1/128)."""
        m, k = U.shape[0], self.k
        if k + m > self.capacity:
            raise ValueError(f"subspace capacity exceeded: {k} + {m} > {self.capacity}")
        if not self.holds_next(U):
            self._Q[k:k + m] = U
        if skip_below is None or k < SKETCH_CHUNK:
            C = W @ self._Q[:k + m].T                  # rows k..k+m of T: U H Qᵀ
        else:
            C = self._new_rows(W, k, m, skip_below)
        self._update_sketch(k, k + m)
        self._T[k:k + m, :k] = C[:, :k]
        self._T[:k, k:k + m] = C[:, :k].T
        self._T[k:k + m, k:k + m] = 0.5 * (C[:, k:] + C[:, k:].T)
        self.k = k + m
        return C

    def _new_rows(self, W: np.ndarray, k: int, m: int, skip_below: float) -> np.ndarray:
        """``W Qᵀ`` over the first ``k + m`` rows, chunks of the first ``k`` estimated at most
        ``skip_below`` (every row of ``W``) left 0 (see :meth:`append`)."""
        chunks = -(-k // SKETCH_CHUNK)
        E = (W @ self._S[:chunks * SKETCH_ROWS].T).reshape(m, chunks, SKETCH_ROWS)
        est = np.sqrt(np.einsum("icj,icj->ic", E, E) / SKETCH_ROWS).max(axis=0)
        C = np.zeros((m, k + m))
        for a, b in _runs(est > skip_below, SKETCH_CHUNK, k):
            np.matmul(W, self._Q[a:b].T, out=C[:, a:b])
        np.matmul(W, self._Q[k:k + m].T, out=C[:, k:])
        skipped = np.flatnonzero(est <= skip_below)
        self.skipped_entries += m * sum(min(SKETCH_CHUNK, k - c * SKETCH_CHUNK) for c in skipped)
        return C

    def _update_sketch(self, k0: int, k1: int) -> None:
        """Add rows ``k0..k1`` of ``Q`` to their chunks' Gaussian summaries."""
        for c in range(k0 // SKETCH_CHUNK, -(-k1 // SKETCH_CHUNK)):
            rows = self._S[c * SKETCH_ROWS:(c + 1) * SKETCH_ROWS]
            if c == len(self._G):      # a new chunk: its own Gaussian combinations, fixed seed
                self._G.append(np.random.default_rng((0x5EED, c)).standard_normal((SKETCH_ROWS, SKETCH_CHUNK)))
                rows[:] = 0.0
            a, b = max(k0, c * SKETCH_CHUNK), min(k1, (c + 1) * SKETCH_CHUNK)
            rows += self._G[c][:, a - c * SKETCH_CHUNK:b - c * SKETCH_CHUNK] @ self._Q[a:b]

    def add_span(self, V: np.ndarray, operator, *, C: np.ndarray | None = None) -> int:
        """Add the part of span(rows of ``V``) orthogonal to ``Q`` and above the noise
        floor (as many rows as there is room for), ``T`` extended with ``operator``'s
        products; return the number of rows added. ``C = V Qᵀ`` may be given when
        already known; ``V`` must then have unit rows (otherwise they are scaled to 1)."""
        V = np.asarray(V, dtype=np.float64)
        if C is None:
            norms = _row_norms(V)
            V = V[norms > 0] / norms[norms > 0, None]       # the span only: unit rows (a new array)
        elif V.shape[0]:
            V = V.copy()                                     # the caller's rows: overwritten below
        if V.shape[0] == 0:
            return 0
        if self.k == 0:
            U = _new_directions(V, self.Q, NOISE_FLOOR * EPS, 1.0)
        else:  # as a block-Krylov step: one full pass, the measured second pass on the kept directions
            U = _krylov_directions(V, V @ self.Q.T if C is None else C, self, NOISE_FLOOR * EPS, 1.0)
        U = U[:self.capacity - self.k]
        if U.shape[0]:
            self.append(U, self.products(operator, U))
        return int(U.shape[0])

    def products(self, operator, V: np.ndarray) -> np.ndarray:
        """The rows ``V H``: written into the :data:`_PRODUCTS` scratch array where the operator
        can (:meth:`~hessrank.curvature.CurvatureOperator.into`), else the operator's own array.
        Either is the caller's to overwrite."""
        into = getattr(operator, "into", None)
        return operator(V) if into is None else into(V, self.scratch(_PRODUCTS, V.shape[0]))

    def scratch(self, slot: int, rows: int) -> np.ndarray:
        """A reusable (rows, p) work array, grown on demand: a round's temporaries of b×p reuse
        memory instead of new pages every step (a fresh b×p array costs more in page faults than
        the arithmetic on it). ``slot``: :data:`_WORK` (Gram–Schmidt temporaries),
        :data:`_PRODUCTS` (the operator's output), :data:`_SPARE` (probes; new directions that
        do not fit in :meth:`next_rows`)."""
        buf = self._scratch.get(slot)
        if buf is None or buf.shape[0] < rows:
            buf = self._scratch[slot] = _reserve((rows, self.p))
        return buf[:rows]

    def next_rows(self, rows: int) -> np.ndarray | None:
        """The ``rows`` rows of the buffer after the basis (None if they do not fit): a step's new
        directions are computed there, so that :meth:`append` need not copy them (nor a fresh b×p
        array be faulted in each step)."""
        return self._Q[self.k:self.k + rows] if self.k + rows <= self.capacity else None

    def holds_next(self, U: np.ndarray) -> bool:
        """Whether ``U`` is exactly the rows after the basis (:meth:`next_rows`)."""
        nxt = self._Q[self.k:self.k + U.shape[0]]
        return (U.shape == nxt.shape and U.strides == nxt.strides
                and U.__array_interface__["data"][0] == nxt.__array_interface__["data"][0])

    def release_scratch(self) -> None:
        """Free the work arrays of :meth:`scratch`."""
        self._scratch.clear()

    def add_to_matrix(self, D: np.ndarray) -> None:
        """``T += D`` for a symmetric k×k ``D`` (a second term of the same operator)."""
        self._T[:self.k, :self.k] += D

    def ritz_values(self) -> np.ndarray:
        """Eigenvalues of ``T``, ascending (:func:`~hessrank.linalg.rank.spectrum`; the driver by
        :data:`~hessrank.linalg.rank.RITZ_TWO_STAGE_FROM`)."""
        if self.k == 0:
            return np.zeros(0)
        if self.k >= RITZ_TWO_STAGE_FROM and two_stage_available():
            # in T's own memory, no k×k copy (at H_L's memory peak): LAPACK destroys the upper
            # triangle and the diagonal, rebuilt afterwards from the saved diagonal and the lower one
            T, diagonal = self.T, self.T.diagonal().copy()
            w = eigvalsh_2stage(T, overwrite=True)
            for a in range(0, self.k, _RESTORE_ROWS):
                e = min(a + _RESTORE_ROWS, self.k)
                T[a:e, e:] = T[e:, a:e].T                          # right of the block from below it
                D = np.tril(T[a:e, a:e], -1)
                T[a:e, a:e] = D + D.T                              # the diagonal block from its lower part
            T[np.diag_indices(self.k)] = diagonal
            if w is not None:
                return w
        return spectrum(np.array(self.T), overwrite=True, two_stage_from=RITZ_TWO_STAGE_FROM)


@dataclass(frozen=True)
class SketchResult:
    """What :func:`sketch_rank` found: the rank with the tolerance and gap at the cut
    (``info``, a :class:`RankInfo` over the Ritz values), its ``certificate`` and the basis
    (``subspace``: orthonormal rows ``Q`` and ``T = Q H Qᵀ``)."""

    info: RankInfo
    certificate: Certificate
    subspace: Subspace = field(repr=False)

    @property
    def rank(self) -> int:
        """The number of eigenvalues above the cut (a lower bound when not :attr:`certified`)."""
        return self.info.rank

    @property
    def tol(self) -> float:
        """The cut: ``max|λ|·p·eps`` by default, or the ``rtol``/``atol`` given."""
        return self.info.tol

    @property
    def gap_decades(self) -> float | None:
        """``log10(|λ_r| / |λ_{r+1}|)`` at the cut, widened by the ``2δ`` uncertainty (None: rank 0 or p)."""
        return self.info.gap_decades

    @property
    def certified(self) -> bool:
        """Whether the rank is certified (or the basis complete)."""
        return self.certificate.certified

    @property
    def eigenvalues(self) -> np.ndarray:
        """The Ritz values (eigenvalues of ``T``), by decreasing magnitude; each lies within
        ``2δ`` of an eigenvalue of ``H``."""
        return self.info.eigenvalues

    def to_dict(self) -> dict:
        """``{"rank", "tol", "gap_decades", "p", "certificate": {...}}`` as JSON-ready values."""
        gap = self.gap_decades
        return {"rank": self.rank, "tol": self.tol, "gap_decades": None if gap is None or not math.isfinite(gap)
                else float(gap), "p": self.info.size, "certificate": self.certificate.to_dict()}

    def summary(self) -> str:
        """One line: rank, size, tolerance, gap and the certificate's status."""
        gap = "-" if self.gap_decades is None else f"{self.gap_decades:.1f}"
        c = self.certificate
        return (f"rank {self.rank} of p = {self.info.size} (tol {self.tol:.2e}, gap {gap} decades); {c.status}, "
                f"basis of {c.columns} vectors, {c.matvecs} products, ‖(I−P)H‖ ≤ {c.residual_bound:.1e}")

    def __repr__(self) -> str:
        return (f"SketchResult(rank={self.rank}, p={self.info.size}, tol={self.tol:.3g}, "
                f"gap_decades={self.gap_decades if self.gap_decades is None else round(self.gap_decades, 2)}, "
                f"status={self.certificate.status!r})")


def sketch_rank(operator, *, p: int | None = None, rtol: float | None = None, atol: float | None = None,
                block: int = 128, probes: int = 32, seed: int = 0, max_columns: int | None = None,
                start: Subspace | None = None) -> SketchResult:
    """Numerical rank of the symmetric matrix ``H`` known through ``operator`` (rows ``V`` -> ``V H``).

    ``operator`` is a :class:`~hessrank.linalg.operator.SymmetricOperator` (anything callable
    with a size ``p``) or a plain function ``V (b, p) -> V @ H``, NumPy or JAX, with its size
    given as ``p`` (:func:`~hessrank.linalg.operator.as_operator`): e.g.
    ``sketch_rank(lambda V: V @ A, p=A.shape[0])``. Returns a :class:`SketchResult` with
    ``rank``, ``tol``, ``gap_decades`` and the ``certificate``. Raises
    :class:`~hessrank.ConfigError` for a missing ``p``, an output of the wrong shape or a
    matrix that is not symmetric, :class:`~hessrank.DataError` for NaN or infinite products.

    Grows the basis until the rank is certified (see the module docstring). Directions
    come from Gaussian probe rounds (``block`` probes at first, ``probes`` later) and,
    in between, from block-Krylov steps: the products ``W = U H`` of the rows just added
    are needed for ``T`` anyway, and what they hold outside the basis is the next block
    (one product per basis vector instead of two). Only Gaussian probes certify. A
    residual at the noise floor that does not yet certify is probed again with
    ``block`` probes (a tighter bound), then, if the basis may grow to ``p``, the basis
    is completed. ``max_columns`` caps the basis (memory). ``start`` continues from a
    :class:`Subspace` whose ``T`` already equals ``Q H Qᵀ`` for this operator.
    The cut and the gap are those of :func:`hessrank.linalg.rank_from_eigenvalues` with
    size p (the gap widened by the ``2δ`` uncertainty, see :func:`rank_info_from_ritz`).
    """
    if block < 1 or probes < 1:
        raise ValueError(f"block and probes must be >= 1, got block={block}, probes={probes}")
    operator = as_operator(operator, p=p)
    p = int(operator.p)
    rng = np.random.default_rng(seed)
    space = start if start is not None else Subspace(p, p if max_columns is None else max_columns)
    rows = block if space.k == 0 else probes
    count = {"matvecs": 0, "rounds": 0}
    clock = {"products": 0.0, "orthogonalisation": 0.0, "eigenvalues": 0.0}
    keep_all = False   # stuck at the noise floor with room for every direction: complete the basis
    pending = None     # the next block-Krylov directions
    h_scale = 0.0      # largest ‖u H‖ seen for a unit vector u
    full_round = False  # the directions in hand came from a probe round that kept every probe
    fixed_cut = tolerance(0.0, p, rtol=rtol, atol=atol)   # the cut's absolute part (atol)

    def apply(V):
        t = time.perf_counter()
        out = space.products(operator, V)
        clock["products"] += time.perf_counter() - t
        count["matvecs"] += V.shape[0]
        return out

    def ritz():
        space.release_scratch()   # not needed by the eigenvalues (nor at their peak); regrown if the sketch goes on
        t = time.perf_counter()
        theta = space.ritz_values()
        clock["eigenvalues"] += time.perf_counter() - t
        return theta

    def done(theta, delta, status):
        return _result(space, theta, delta, status, count, clock, rtol, atol)

    while True:
        if space.k == p:
            return done(ritz(), 0.0, COMPLETE_BASIS)
        if pending is not None:
            U, pending = pending, None
        else:  # a probe round: certify, or find new directions
            b = min(rows, p)
            Omega = rng.standard_normal(out=space.scratch(_SPARE, b))
            Y = apply(Omega)
            scale = float(np.max(_row_norms(Y)))
            w = float(np.max(_row_norms(Omega)))
            _check_symmetric(Y @ Omega.T, scale * w, below=fixed_cut * w * w)
            count["rounds"] += 1
            t = time.perf_counter()
            R = _project_out(space.Q, Y, work=space.scratch(_WORK, b), in_place=True)   # Y is ours
            Omega = Y = None
            clock["orthogonalisation"] += time.perf_counter() - t
            delta = residual_bound(float(np.max(_row_norms(R))), b)
            if delta == 0.0:
                return done(ritz(), 0.0, CERTIFIED)
            if space.k == 0 and _separated(np.zeros(0), delta, p, rtol, atol):
                # a fixed cut (atol, e.g. a block counted at its whole matrix's tolerance) above 2δ:
                # every eigenvalue is below it, rank 0, without completing a basis of noise
                return done(ritz(), delta, CERTIFIED)
            floor = NOISE_FLOOR * EPS * scale
            if space.k > 0:
                h_scale = max(h_scale, _norm_estimate(space.T, rng))
                tol_est = tolerance(h_scale, p, rtol=rtol, atol=atol)
                if delta < tol_est:  # worth the full check (the estimate may be low by 2x)
                    theta = ritz()
                    if _separated(theta, delta, p, rtol, atol):
                        return done(theta, delta, CERTIFIED)
                # for small p the noise floor can exceed the cut: never drop what may matter
                floor = min(floor, 0.1 * tol_est)
            t = time.perf_counter()
            U = _new_directions(R, space.Q, 0.0 if keep_all else floor, scale, out=space.next_rows(b))
            R = None
            clock["orthogonalisation"] += time.perf_counter() - t
            if U.shape[0] == 0:            # the residual is floating-point noise
                if not keep_all and b < min(block, p):
                    rows = block           # more probes, smaller α: a tighter bound
                    continue
                if not keep_all and space.capacity == p:
                    keep_all, rows = True, block
                    continue
                theta = ritz()
                tol = tolerance(float(np.max(np.abs(theta), initial=0.0)), p, rtol=rtol, atol=atol)
                return done(theta, delta, f"{NOT_CERTIFIED}: the residual is at the noise floor but 2δ = "
                                          f"{2 * delta:.1e} does not separate the cut {tol:.1e} from the "
                                          "nearest Ritz value")
            rows = block if (U.shape[0] == b or keep_all) else probes
            full_round = U.shape[0] == b   # every probe found a new direction: more may be left, probe wider
        room = space.capacity - space.k
        if room == 0:
            return done(ritz(), delta, f"{NOT_CERTIFIED}: memory cap of {space.capacity} basis vectors reached")
        U = U[:room]
        W = apply(U)
        t = time.perf_counter()
        _check_finite(W)
        # U H Uᵀ, unit rows U: its rounding is relative to ‖H‖ ≈ the largest ‖u H‖ seen
        w_scale = float(np.max(_row_norms(W)))
        h_scale = max(h_scale, w_scale)     # ≈ max|λ| (unit rows U)
        tol_now = tolerance(h_scale, p, rtol=rtol, atol=atol)
        skip = None if keep_all else min(_T_SKIP_BELOW * EPS * h_scale, _T_SKIP_CUT_SHARE * tol_now)
        C = space.append(U, W, skip_below=skip)             # C = W Qᵀ, rows of T
        _check_symmetric(C[:, space.k - U.shape[0]:], h_scale, below=fixed_cut)
        # block Krylov: the part of W = U H outside span(Q) (C serves as the first projection)
        if keep_all:
            nxt = _new_directions(_project_out(space.Q, W, C), space.Q, 0.0, h_scale)
        else:
            level = second_pass_level(tol_now, h_scale, space.k)
            nxt = _krylov_directions(W, C, space, KRYLOV_FLOOR * EPS * h_scale, h_scale, level)
        clock["orthogonalisation"] += time.perf_counter() - t
        # a block that shrank below a quarter is left to the next probe round (small GEMMs are
        # slow), except right after a wide block: what is left at the end of a chain is real (above
        # the floor) and one narrow step is cheaper than a probe round finding it again (measured at
        # p = 110,100: 128 -> 7, then 32 probes found the same 7); a chain that ran dry suggests the
        # range is complete: try to certify
        if nxt.shape[0] >= max(1, min(block, U.shape[0]) // 4) or (nxt.shape[0] and 2 * U.shape[0] >= block):
            pending = nxt
        elif not keep_all and not full_round:
            rows = probes
        full_round = False
        U = W = C = nxt = None   # b×p arrays (U is in Q now): free them before the next products


def _reserve(shape: tuple[int, int]) -> np.ndarray:
    """An uninitialised float64 array in its own anonymous mapping, kept out of transparent huge
    pages: the basis is reserved for its capacity and filled row by row, and only the pages
    written cost memory. NumPy asks for huge pages on large arrays, which here lifted the
    peak resident memory of p = 110,100 by 0.37 GB (4.96 against 4.59 GB, same time)."""
    size = max(1, shape[0] * shape[1] * 8)
    try:
        buf = mmap.mmap(-1, size)
    except (OSError, OverflowError) as err:  # as np.empty would: a MemoryError, not a file error
        raise MemoryError(f"cannot reserve {size / 2**30:.1f} GiB for an array of shape {shape}: "
                          f"{getattr(err, 'strerror', None) or err}") from None
    if hasattr(mmap, "MADV_NOHUGEPAGE"):
        try:
            buf.madvise(mmap.MADV_NOHUGEPAGE)
        except OSError:  # pragma: no cover - a kernel without transparent huge pages
            pass
    return np.frombuffer(buf, dtype=np.float64, count=shape[0] * shape[1]).reshape(shape)


def _check_finite(Y: np.ndarray) -> None:
    _refuse_non_finite(Y, "Hessian-vector products")


def _check_symmetric(S: np.ndarray, scale: float, *, below: float = 0.0) -> None:
    """Refuse an operator whose small sample ``S = V H Vᵀ`` is not symmetric: the sketch
    (and its certificate) hold only for symmetric matrices. Asymmetry under a thousandth of
    ``below`` (the absolute cut, scaled like ``S``) cannot move an eigenvalue across the cut:
    rounding of a matrix that is zero at the problem's scale is not refused."""
    _check_finite(S)
    if not np.isfinite(scale):
        _check_finite(np.array([scale]))
    skew = float(np.max(np.abs(S - S.T), initial=0.0))
    if skew > max(SYMMETRY_TOL * scale, 1e-3 * below):
        raise ConfigError.about("operator", f"not symmetric: on the probes |VHVᵀ − (VHVᵀ)ᵀ| = {skew:.1e} against "
                                            f"{scale:.1e} for the products; the sketch ranks symmetric matrices only")


def residual_bound(rho: float, probes: int) -> float:
    """δ with ``‖(I − P) H‖ ≤ δ`` with probability ``1 − FAILURE_PROBABILITY``, given the
    largest residual ``rho = max_i ‖(I − P) H ω_i‖`` of ``probes`` Gaussian probes."""
    alpha = FAILURE_PROBABILITY ** (-1.0 / probes)
    return alpha * math.sqrt(2.0 / math.pi) * rho


def rank_info_from_ritz(theta, delta: float, p: int, *, rtol=None, atol=None) -> RankInfo:
    """:class:`RankInfo` from Ritz values ``theta`` of a p×p matrix whose other eigenvalues
    are at most ``2·delta``; the gap is bounded below using the ``2·delta`` uncertainty."""
    info = rank_from_eigenvalues(theta, p, rtol=rtol, atol=atol)
    if delta > 0 and 0 < info.rank < p:
        mags = np.abs(info.eigenvalues)
        below = (float(mags[info.rank]) if info.rank < mags.size else 0.0) + 2 * delta
        above = float(mags[info.rank - 1]) - 2 * delta
        gap = math.log10(above / below) if above > 0 else 0.0
        info = replace(info, gap_decades=gap)
    return info


# --------------------------------------------------------------------------- #
def _result(space, theta, delta, status, count, clock, rtol, atol) -> SketchResult:
    space.release_scratch()   # the work arrays are not needed by a finished sketch (nor at H_L's peak)
    info = rank_info_from_ritz(theta, delta, space.p, rtol=rtol, atol=atol)
    fail = 0.0 if status == COMPLETE_BASIS else FAILURE_PROBABILITY
    cert = Certificate(columns=space.k, matvecs=count["matvecs"], residual_bound=float(delta),
                       failure_probability=fail, status=status, probe_rounds=count["rounds"],
                       seconds={k: round(v, 3) for k, v in clock.items()})
    return SketchResult(info=info, certificate=cert, subspace=space)


def _separated(theta, delta: float, p: int, rtol, atol) -> bool:
    """True when no Ritz value (nor 0) lies within ``2δ`` (plus the cut's own
    uncertainty) of the cut: then the count above the cut is that of ``H``."""
    mags = np.abs(np.asarray(theta))
    max_abs = float(mags.max()) if mags.size else 0.0
    tol = tolerance(max_abs, p, rtol=rtol, atol=atol)
    # max|λ| itself is known to ±2δ: the cut moves by at most that times its factor
    factor = (p * EPS if rtol is None and atol is None else (rtol or 0.0))
    slack = 2 * delta + 2 * delta * factor
    if tol <= slack:
        return False
    return bool(np.all(np.abs(mags - tol) > slack))


def _project_out(Q: np.ndarray, Y: np.ndarray, C: np.ndarray | None = None, *, work: np.ndarray | None = None,
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


def _krylov_directions(W: np.ndarray, C: np.ndarray, space: Subspace, floor: float, scale: float,
                       level: float = _SECOND_PASS_ABOVE * EPS) -> np.ndarray:
    """:func:`_new_directions` of ``W (I − QᵀQ)`` (``C = W Qᵀ``) with the second Gram–Schmidt
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
        return _new_directions(W, Q, floor, scale)
    R = _first_pass(W, C[:, :Q.shape[0]], Q, scale, space.scratch(_WORK, W.shape[0]))
    out = space.next_rows(R.shape[0])
    U, _ = _kept_directions(R, floor, scale, space.scratch(_SPARE, R.shape[0]) if out is None else out)
    if U.shape[0] == 0:
        return U
    _second_pass(U, Q, space.scratch(_WORK, U.shape[0]), level)
    if float(np.min(_row_norms(U))) < 0.9:
        R -= (R @ Q.T) @ Q
        return _new_directions(R, Q, floor, scale)
    return _cholesky_qr2(U, in_place=True)   # in Q's next rows (or scratch): appended without a copy


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
    for a, b in _runs(chunks, _PASS_CHUNK, Q.shape[0]):
        W -= np.matmul(C[:, a:b], Q[a:b], out=out)


def _marked_chunks(columns: np.ndarray) -> np.ndarray:
    """Which chunks of :data:`_PASS_CHUNK` basis rows hold a marked column."""
    return np.logical_or.reduceat(columns, np.arange(0, columns.size, _PASS_CHUNK)) if columns.size else columns


def _runs(marked, size: int, end: int):
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


def _cholesky_qr2(U: np.ndarray, *, in_place: bool = False) -> np.ndarray:
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


def _new_directions(R: np.ndarray, Q: np.ndarray, floor: float, scale: float, *,
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
    rho = float(np.max(_row_norms(R)))
    weak = s < rho / 10
    noise = rho < 1e-8 * scale
    if noise:
        weak[:] = True
    if Q.shape[0] and weak.any():
        U[weak] -= (U[weak] @ Q.T) @ Q
    U = _cholesky_qr2(U, in_place=out is not None)
    if noise and Q.shape[0]:
        U -= (U @ Q.T) @ Q
        U = _cholesky_qr2(U, in_place=out is not None)
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
    if m == b or _RELATIVE_KEEP * s[-1] <= floor or float(np.max(_row_norms(R))) < 1e-8 * scale:
        return U, s[keep]
    # R without its strong directions: U orthonormal first (the Gram route's weakest rows span
    # their directions only to ~eps·(s_max/s)², which would come back as "weak directions")
    Uo = _cholesky_qr2(U, in_place=out is not None)
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


def _row_norms(V: np.ndarray) -> np.ndarray:
    """Euclidean norms of the rows of ``V`` without a temporary of V's size (``np.linalg.norm``
    squares into a new b×p array: 4× slower at p = 110,100)."""
    return np.sqrt(np.einsum("ij,ij->i", V, V))


def _norm_estimate(T: np.ndarray, rng, steps: int = 30) -> float:
    """``max|θ|`` of the symmetric ``T`` by power iteration (a lower estimate)."""
    v = rng.standard_normal(T.shape[0])
    est = 0.0
    for _ in range(steps):
        w = T @ v
        est = float(np.linalg.norm(w))
        if est == 0.0:
            return 0.0
        v = w / est
    return est
