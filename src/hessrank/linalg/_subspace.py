r"""The sketch's subspace: orthonormal rows :math:`Q` (k×p) and :math:`T = Q H Q^\top` (k×k).

Grown in place, row block by row block: new orthonormal rows :math:`U` (orthogonal to
:math:`Q`) with their products :math:`W = U H` extend :math:`T` by
:math:`\begin{pmatrix} T & Q W^\top \\ W Q^\top & U W^\top \end{pmatrix}` (symmetrised).
The basis is summarised in chunks of :data:`SKETCH_CHUNK` rows by :data:`SKETCH_ROWS`
Gaussian combinations each, so that a block-Krylov step computes :math:`W Q^\top` only on
chunks that hold more than rounding. The Ritz values (eigenvalues of :math:`T`) are the
projected eigenproblem the certificate reads. Memory: the k×p basis, its summaries and
:math:`T`; buffers are reserved for the capacity and cost memory only as rows are written.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass, field

import numpy as np

from ._orthogonalise import (
    NOISE_FLOOR,
    PRODUCTS,
    SPARE,
    WORK,
    krylov_directions,
    new_directions,
    project_out,
    row_norms,
    runs,
)
from .lapack import eigvalsh_2stage, two_stage_available
from .rank import EPS, RITZ_TWO_STAGE_FROM, spectrum

#: rows per block when T's upper triangle is rebuilt after its eigenvalues (:meth:`Subspace.ritz_values`)
_RESTORE_ROWS = 512
#: the basis is summarised in chunks of SKETCH_CHUNK rows by SKETCH_ROWS Gaussian combinations
#: each (:meth:`Subspace.append`): a block-Krylov step computes the new rows of T only on the
#: chunks whose summary says they hold more than rounding
SKETCH_CHUNK = 256
SKETCH_ROWS = 8


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
        for a, b in runs(est > skip_below, SKETCH_CHUNK, k):
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
            norms = row_norms(V)
            V = V[norms > 0] / norms[norms > 0, None]       # the span only: unit rows (a new array)
        elif V.shape[0]:
            V = V.copy()                                     # the caller's rows: overwritten below
        if V.shape[0] == 0:
            return 0
        if self.k == 0:
            U = new_directions(V, self.Q, NOISE_FLOOR * EPS, 1.0)
        else:  # as a block-Krylov step: one full pass, the measured second pass on the kept directions
            U = krylov_directions(V, V @ self.Q.T if C is None else C, self, NOISE_FLOOR * EPS, 1.0)
        U = U[:self.capacity - self.k]
        if U.shape[0]:
            self.append(U, self.products(operator, U))
        return int(U.shape[0])

    def products(self, operator, V: np.ndarray) -> np.ndarray:
        """The rows ``V H``: written into the :data:`PRODUCTS` scratch array where the operator
        can (:meth:`~hessrank.curvature.CurvatureOperator.into`), else the operator's own array.
        Either is the caller's to overwrite."""
        into = getattr(operator, "into", None)
        return operator(V) if into is None else into(V, self.scratch(PRODUCTS, V.shape[0]))

    def scratch(self, slot: int, rows: int) -> np.ndarray:
        """A reusable (rows, p) work array, grown on demand: a round's temporaries of b×p reuse
        memory instead of new pages every step (a fresh b×p array costs more in page faults than
        the arithmetic on it). ``slot``: :data:`WORK` (Gram–Schmidt temporaries),
        :data:`PRODUCTS` (the operator's output), :data:`SPARE` (probes; new directions that
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

    # the steps of the sketch's loop on this basis (:func:`~hessrank.linalg.sketch.sketch_rank`); a basis on
    # devices (:class:`~hessrank.linalg._mesh.MeshSubspace`) has the same steps on its arrays
    def probes(self, rng, rows: int) -> np.ndarray:
        """``rows`` Gaussian probe rows (in the :data:`SPARE` scratch)."""
        return rng.standard_normal(out=self.scratch(SPARE, rows))

    @staticmethod
    def row_norms(V: np.ndarray) -> np.ndarray:
        """Euclidean norms of the rows of ``V``."""
        return row_norms(V)

    @staticmethod
    def cross(Y: np.ndarray, V: np.ndarray) -> np.ndarray:
        """``Y Vᵀ`` (small: rows × rows)."""
        return Y @ V.T

    @staticmethod
    def all_finite(V: np.ndarray) -> bool:
        """Whether every entry of ``V`` is finite."""
        return bool(np.isfinite(V).all())

    def residual(self, Y: np.ndarray) -> np.ndarray:
        """``Y (I − QᵀQ)``, in ``Y``'s memory (block Gram–Schmidt, twice)."""
        return project_out(self.Q, Y, work=self.scratch(WORK, Y.shape[0]), in_place=True)

    def directions(self, R: np.ndarray, floor: float, scale: float) -> np.ndarray:
        """Orthonormal rows spanning ``R``'s directions above ``floor`` (a residual against ``Q``),
        computed in the rows after the basis where they fit."""
        return new_directions(R, self.Q, floor, scale, out=self.next_rows(R.shape[0]))

    def krylov_directions(self, W: np.ndarray, C: np.ndarray, floor: float, scale: float, level: float) -> np.ndarray:
        """A block-Krylov step's new directions: those of ``W (I − QᵀQ)`` above ``floor`` (``C = W Qᵀ``;
        ``W`` is overwritten), the second pass at coefficients above ``level``."""
        return krylov_directions(W, C, self, floor, scale, level)

    def complete_directions(self, W: np.ndarray, C: np.ndarray, scale: float) -> np.ndarray:
        """Every direction of ``W (I − QᵀQ)`` (``C = W Qᵀ``): completing the basis."""
        return new_directions(project_out(self.Q, W, C), self.Q, 0.0, scale)

    def coefficients(self, V: np.ndarray, start: int = 0) -> np.ndarray:
        """``V Qᵀ`` over the basis rows from ``start`` on."""
        return V @ self.Q[start:].T

    def coefficients_t(self, V: np.ndarray, start: int = 0) -> np.ndarray:
        """``Q[start:] Vᵀ``."""
        return self.Q[start:] @ V.T

    def projected(self, operator) -> np.ndarray:
        """``Q H Qᵀ`` (symmetrised) for another operator ``H``."""
        C = self.Q @ operator(self.Q).T
        return 0.5 * (C + C.T)

    def projected_dense(self, H: np.ndarray) -> np.ndarray:
        """``Q H Qᵀ`` for a p×p matrix ``H``."""
        return self.Q @ H @ self.Q.T

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
