r"""The sketch's basis on a mesh of JAX devices: the p axis sharded, small matrices replicated.

A :class:`MeshSubspace` holds the same state as :class:`~hessrank.linalg._subspace.Subspace`
— orthonormal rows :math:`Q` (k×p) and :math:`T = Q H Q^\top` (k×k) — with the columns
of every p-long row split across the devices of a one-axis :class:`jax.sharding.Mesh`:
device :math:`d` of :math:`N` holds columns :math:`[d\,p'/N, (d+1)\,p'/N)` of every basis
row, probe, product and residual (:math:`p'` is p rounded up to a multiple of N; the
padding columns are zero and stay zero). Every step of the sketch is then a sum over the
devices of per-device GEMMs:

* coefficients :math:`C = Y Q^\top = \sum_d Y_d Q_d^\top` (b×k, one all-reduce, replicated);
* projections :math:`Y - C Q` (each device its own columns, no communication);
* Gram matrices :math:`R R^\top` (b×b, all-reduced) for the rank-revealing directions
  (:math:`U = S^{-1} V^\top R` from :math:`R R^\top = V S^2 V^\top`) and Cholesky QR
  (:math:`U \leftarrow L^{-1} U`, :math:`L L^\top = U U^\top`), twice;
* :math:`T` and its eigenvalues (the projected eigenproblem) are k×k and replicated: every
  process holds the same :math:`T` and computes the same Ritz values and certificate.

The products :math:`V H` are those of the operator (its own JAX program over the data): the
rows are gathered :data:`PRODUCT_ROWS` at a time, multiplied, and each device keeps its columns
of the result (a process never holds a whole block of p-long rows: at p = 535,500 and b = 128
that would be 0.55 GB per copy); Gaussian probes are drawn the same way. The basis is kept in
chunks of :data:`JOIN_ROWS` rows, each allocated once and filled in place as rows come (no k×p
copy as it grows, and no copy of a chunk when it fills: only the last chunk's unfilled rows are
spare, zeros that add nothing). The certificate loop is the one of
:func:`~hessrank.linalg.sketch.sketch_rank`; only probe rounds certify, so a basis found by these
steps certifies the same rank as the host's.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from ..errors import ConfigError
from ._orthogonalise import _CHOLQR_ONCE, _RELATIVE_KEEP, NOISE_FLOOR, serial_lapack
from ._subspace import _reserve
from .rank import EPS, RITZ_TWO_STAGE_FROM, spectrum

#: the mesh's one axis: the p columns of every row
AXIS = "p"
#: basis rows per chunk: each projection reads its b×p rows once per chunk rather than once per step's
#: block (a b×p GEMM output is written per chunk: at p = 535,500 and b = 128 that is 0.55 GB per chunk
#: and pass); the last chunk's unfilled rows are memory held ahead and zeros multiplied
JOIN_ROWS = 256
#: rows of a product (or of probes) gathered on the host at a time: the transients are this many
#: p-long rows, each device's columns of the whole block are written as the rows come
PRODUCT_ROWS = 16


def device_mesh(devices: int | Mesh) -> Mesh:
    """A one-axis mesh of the first ``devices`` devices JAX sees (every process's, in
    ``jax.devices()`` order), or ``devices`` itself when it is a mesh."""
    if isinstance(devices, Mesh):
        return devices
    have = jax.devices()
    if isinstance(devices, bool) or not isinstance(devices, int) or not 1 <= devices <= len(have):
        raise ConfigError.invalid("devices", devices, f"must be a whole number from 1 to {len(have)} (the devices "
                                                      f"JAX sees: {_describe(have)})")
    return Mesh(np.array(have[:devices]), (AXIS,))


def choose_devices(devices) -> Mesh | None:
    """The mesh a run uses: ``devices`` None or ``auto`` — every device JAX sees, except on one
    process whose devices are all CPUs, where the host's NumPy path is faster (None); a number
    or a mesh — that one."""
    if devices is None or devices == "auto":
        have = jax.devices()
        if jax.process_count() == 1 and all(d.platform == "cpu" for d in have):
            return None
        return device_mesh(len(have))
    return device_mesh(devices)


def per_device_bytes(mesh: Mesh, host_bytes: float) -> float:
    """Memory one device of ``mesh`` may use: its own limit where JAX reports one (GPU, TPU),
    else the host's ``host_bytes`` shared by this process's devices of the mesh."""
    local = [d for d in mesh.devices.flat if d.process_index == jax.process_index()] or list(mesh.devices.flat)
    limits = []
    for d in local:
        try:
            stats = d.memory_stats() or {}
        except Exception:  # noqa: BLE001 - a backend without memory statistics
            stats = {}
        if stats.get("bytes_limit"):
            limits.append(float(stats["bytes_limit"]) - float(stats.get("bytes_in_use", 0)))
    if limits and len(limits) == len(local):
        return min(limits)
    return host_bytes / len(local)


def _describe(devices) -> str:
    kinds = sorted({d.platform for d in devices})
    return f"{len(devices)} ({', '.join(kinds)})"


class _Steps:
    """The jitted per-device pieces on one mesh: rows sharded by columns, small matrices replicated."""

    def __init__(self, mesh: Mesh):
        self.rows = NamedSharding(mesh, P(None, AXIS))
        self.small = NamedSharding(mesh, P())
        self.cross = jax.jit(lambda A, B: A @ B.T, out_shardings=self.small)
        # R is the caller's work array, overwritten in place (its buffer donated)
        self.subtract = jax.jit(lambda R, C, Q: R - C @ Q, out_shardings=self.rows, donate_argnums=0)
        self.take = jax.jit(lambda V, start, rows: jax.lax.dynamic_slice_in_dim(V, start, rows, 0),
                            static_argnums=2, out_shardings=self.rows)
        self.combine = jax.jit(lambda M, R: M @ R, out_shardings=self.rows)
        self.norms2 = jax.jit(lambda V: jnp.einsum("ij,ij->i", V, V), out_shardings=self.small)
        self.zeros = jax.jit(lambda rows, width: jnp.zeros((rows, width)), static_argnums=(0, 1),
                             out_shardings=self.rows)
        # rows U written into a chunk at ``start``, in place (the chunk's buffer donated)
        self.put = jax.jit(lambda chunk, U, start: jax.lax.dynamic_update_slice_in_dim(chunk, U, start, 0),
                           out_shardings=self.rows, donate_argnums=0)
        self.finite = jax.jit(lambda V: jnp.isfinite(V).all(), out_shardings=self.small)


@functools.lru_cache(maxsize=8)
def _steps(mesh: Mesh) -> _Steps:
    """One set of compiled steps per mesh (their programs are cached by shape)."""
    return _Steps(mesh)


class ProcessShare:
    """An operator whose products are this process's share of a sum over the processes (its own
    samples): :meth:`MeshSubspace.products` adds the processes' shares."""

    summed = True

    def __init__(self, operator):
        self.operator = operator
        self.p = operator.p
        self.name = getattr(operator, "name", "H")

    def __call__(self, V) -> np.ndarray:
        return self.operator(V)

    def into(self, V, out: np.ndarray) -> np.ndarray:
        """This process's share, written into ``out`` where the operator can."""
        into = getattr(self.operator, "into", None)
        return self.operator(V) if into is None else into(V, out)


class ProcessSum(ProcessShare):
    """An operator whose products are this process's share of a sum over the processes, added over
    the processes by the operator itself (for a basis in host memory: every process then holds the
    whole product, the same to the last bit on each)."""

    summed = False   # its products are the sums already

    def __call__(self, V) -> np.ndarray:
        W = np.array(self.operator(V), dtype=np.float64)
        _sum_over_processes(W)
        return W

    def into(self, V, out: np.ndarray) -> np.ndarray:
        """The sum over the processes, written into ``out`` where the operator can."""
        W = super().into(V, out)
        if W is not out or not W.flags.writeable or not W.flags.c_contiguous:
            W = np.array(W, dtype=np.float64)
        _sum_over_processes(W)
        return W


def host(x) -> np.ndarray:
    """A replicated array's value on this process (any one of its copies)."""
    return np.asarray(x.addressable_data(0))


class MeshSubspace:
    """Orthonormal rows ``Q`` (k×p) sharded by columns over ``mesh`` and the replicated ``T = Q H Qᵀ``.

    The steps of :class:`~hessrank.linalg._subspace.Subspace` that the sketch's loop calls, on
    device arrays; rows given by the host (NumPy, p columns) are placed with :meth:`to_device`.
    """

    def __init__(self, p: int, capacity: int, mesh: Mesh):
        self.p = int(p)
        self.capacity = int(min(capacity, p))
        self.mesh = mesh
        self.devices = int(mesh.devices.size)
        self.width = -(-self.p // self.devices) * self.devices      # p rounded up to the mesh
        self.k = 0
        self.skipped_entries = 0
        self._chunks: list = []        # arrays of rows × width: the basis rows, in order
        self._filled: list[int] = []   # how many rows of each chunk are basis rows (the rest are zeros)
        self._T = _reserve((max(self.capacity, 1), max(self.capacity, 1)))
        self._steps = _steps(mesh)

    # ---------------------------------------------------------------- placement
    def to_device(self, V: np.ndarray):
        """Rows ``V`` (host, ``p`` columns) as a row array sharded by columns (zero padding)."""
        V = np.asarray(V, dtype=np.float64)
        if self.width != self.p:
            padded = np.zeros((V.shape[0], self.width))
            padded[:, :self.p] = V
            V = padded
        return jax.make_array_from_callback(V.shape, self._steps.rows, lambda idx: V[idx])

    def replicated(self, M: np.ndarray):
        """A small host matrix, replicated on every device."""
        M = np.ascontiguousarray(M, dtype=np.float64)
        return jax.make_array_from_callback(M.shape, self._steps.small, lambda idx: M[idx])

    def to_host(self, V) -> np.ndarray:
        """Rows of a sharded array, gathered on this process (``p`` columns)."""
        if V.is_fully_addressable:
            full = np.asarray(V)
        else:
            from jax.experimental import multihost_utils
            full = np.asarray(multihost_utils.process_allgather(V, tiled=True))
        return full[:, :self.p]

    def _empty(self):
        return self.to_device(np.zeros((0, self.p)))

    # ---------------------------------------------------------------- the basis
    @property
    def T(self) -> np.ndarray:
        """The k×k Rayleigh quotient ``Q H Qᵀ`` (replicated: every process holds it)."""
        return self._T[:self.k, :self.k]

    @property
    def blocks(self) -> list:
        """The basis as row blocks (sharded arrays of ``width`` columns), in order: its chunks, the last
        one cut to its filled rows."""
        return [Qc if f == Qc.shape[0] else self._steps.take(Qc, 0, f) for Qc, f in zip(self._chunks, self._filled)]

    def coefficients(self, V, start: int = 0) -> np.ndarray:
        """``V Qᵀ`` over the basis rows from ``start`` on (host, rows × (k − start)); ``V`` on the
        devices or rows on the host."""
        if isinstance(V, np.ndarray):
            V = self.to_device(V)
        parts, row = [], 0
        for Qc, f in zip(self._chunks, self._filled):
            if row + f > start:
                C = host(self._steps.cross(V, Qc))
                parts.append(C[:, max(0, start - row):f])
            row += f
        return np.hstack(parts) if parts else np.zeros((V.shape[0], 0))

    def coefficients_t(self, V, start: int = 0) -> np.ndarray:
        """``Q[start:] Vᵀ``."""
        return self.coefficients(V, start).T

    def _subtract(self, R, C: np.ndarray):
        """``R − C Q`` (``C`` on the host, k columns)."""
        row = 0
        for Qc, f in zip(self._chunks, self._filled):
            Cc = C[:, row:row + f]
            if f < Qc.shape[0]:   # the chunk's unfilled rows: zero coefficients
                Cc = np.hstack([Cc, np.zeros((C.shape[0], Qc.shape[0] - f))])
            R = self._steps.subtract(R, self.replicated(Cc), Qc)
            row += f
        return R

    def append(self, U, W, *, skip_below: float | None = None) -> np.ndarray:
        """Add orthonormal rows ``U`` (orthogonal to ``Q``) with ``W = U H``; extend ``T``; return
        ``W Qᵀ`` against the extended ``Q`` (host). Every entry is computed (``skip_below`` is the
        host's economy; here the coefficients are one all-reduce either way)."""
        m, k = U.shape[0], self.k
        if k + m > self.capacity:
            raise ValueError(f"subspace capacity exceeded: {k} + {m} > {self.capacity}")
        old = self.coefficients(W)
        C = np.hstack([old, host(self._steps.cross(W, U))])
        self._store(U)
        self._T[k:k + m, :k] = C[:, :k]
        self._T[:k, k:k + m] = C[:, :k].T
        self._T[k:k + m, k:k + m] = 0.5 * (C[:, k:] + C[:, k:].T)
        self.k = k + m
        return C

    def add_to_matrix(self, D: np.ndarray) -> None:
        """``T += D`` for a symmetric k×k ``D``."""
        self._T[:self.k, :self.k] += D

    def _store(self, U) -> None:
        """Write the rows ``U`` after the basis rows: into the last chunk while it has room, then into new
        chunks of :data:`JOIN_ROWS` rows (fewer when the capacity is nearer)."""
        m, lo, k = U.shape[0], 0, self.k
        while lo < m:
            if not self._chunks or self._filled[-1] == self._chunks[-1].shape[0]:
                rows = max(1, min(JOIN_ROWS, self.capacity - (k + lo)))
                self._chunks.append(self._steps.zeros(rows, self.width))
                self._filled.append(0)
            f = self._filled[-1]
            count = min(m - lo, self._chunks[-1].shape[0] - f)
            piece = U if count == m else self._steps.take(U, lo, count)
            self._chunks[-1] = self._steps.put(self._chunks[-1], piece, f)
            self._filled[-1] = f + count
            lo += count

    def projected(self, operator) -> np.ndarray:
        """``Q H Qᵀ`` (symmetrised) for another operator ``H``, chunk by chunk."""
        rows = [self.coefficients(self.products(operator, Qc, rows=f)) for Qc, f in zip(self._chunks, self._filled)]
        C = np.vstack(rows) if rows else np.zeros((0, 0))
        return 0.5 * (C + C.T)

    def projected_dense(self, H: np.ndarray) -> np.ndarray:
        """``Q H Qᵀ`` for a p×p host matrix ``H``."""
        return self.projected(lambda V: V @ H)

    def add_span(self, V: np.ndarray, operator, *, C: np.ndarray | None = None) -> int:
        """Add the part of span(rows of the host's ``V``) orthogonal to ``Q`` and above the noise floor
        (as many rows as there is room for), ``T`` extended with ``operator``'s products; return the
        number of rows added (``C``, the host's shortcut, is not needed here)."""
        V = np.asarray(V, dtype=np.float64)
        norms = np.sqrt(np.einsum("ij,ij->i", V, V))
        V = V[norms > 0] / norms[norms > 0, None]
        if V.shape[0] == 0:
            return 0
        U = self.directions(self.residual(self.to_device(V)), NOISE_FLOOR * EPS, 1.0)
        U = U[:self.capacity - self.k]
        if U.shape[0]:
            self.append(U, self.products(operator, U))
        return int(U.shape[0])

    def ritz_values(self) -> np.ndarray:
        """Eigenvalues of ``T``, ascending (the same on every process)."""
        if self.k == 0:
            return np.zeros(0)
        return spectrum(np.array(self.T), overwrite=True, two_stage_from=RITZ_TWO_STAGE_FROM)

    def release_scratch(self) -> None:
        """Nothing to free: the steps' arrays are the devices' own."""

    # ---------------------------------------------------------------- the steps of the loop
    def products(self, operator, V, *, rows: int | None = None):
        """The rows ``V H`` (of ``V``'s first ``rows`` rows): :data:`PRODUCT_ROWS` rows at a time gathered
        on this process, multiplied by the operator (a :class:`ProcessShare`'s shares added over the
        processes), and each of this process's devices keeps its columns."""
        summed = getattr(operator, "summed", False) and jax.process_count() > 1

        def part(lo, hi):
            W = np.array(operator(self.to_host(self._steps.take(V, lo, hi - lo))), dtype=np.float64)
            if summed:
                _sum_over_processes(W)
            return W

        return self._assemble(V.shape[0] if rows is None else rows, part)

    def probes(self, rng, rows: int):
        """``rows`` Gaussian probe rows: the host's random numbers (the same on every process, and the
        same as the host path's: drawn row after row)."""
        return self._assemble(rows, lambda lo, hi: rng.standard_normal((hi - lo, self.p)))

    def _assemble(self, rows: int, make):
        """A (rows × width) row array sharded by columns whose rows ``lo:hi`` are ``make(lo, hi)`` (host,
        ``p`` columns), asked for :data:`PRODUCT_ROWS` rows at a time in order; each of this process's
        devices keeps only its columns (the padding columns are zero)."""
        shape = (int(rows), self.width)
        where = self._steps.rows.addressable_devices_indices_map(shape)
        parts = {d: np.zeros((shape[0], len(range(*idx[1].indices(self.width))))) for d, idx in where.items()}
        for lo in range(0, shape[0], PRODUCT_ROWS):
            hi = min(lo + PRODUCT_ROWS, shape[0])
            W = make(lo, hi)
            for d, idx in where.items():
                a, b, _ = idx[1].indices(self.width)
                if a < self.p:
                    parts[d][lo:hi, :min(b, self.p) - a] = W[:, a:min(b, self.p)]
            W = None
        arrays = [jax.device_put(parts.pop(d), d) for d in list(where)]
        return jax.make_array_from_single_device_arrays(shape, self._steps.rows, arrays)

    def row_norms(self, V) -> np.ndarray:
        return np.sqrt(host(self._steps.norms2(V)))

    def cross(self, Y, V) -> np.ndarray:
        return host(self._steps.cross(Y, V))

    def all_finite(self, V) -> bool:
        return bool(host(self._steps.finite(V)))

    def residual(self, Y):
        """``Y (I − QᵀQ)``: block classical Gram–Schmidt, twice."""
        if self.k == 0:
            return Y
        R = self._subtract(Y, self.coefficients(Y))
        return self._subtract(R, self.coefficients(R))

    def krylov_directions(self, W, C: np.ndarray, floor: float, scale: float, level: float):
        """A block-Krylov step's new directions (``C = W Qᵀ`` serves as the first pass)."""
        R = self._subtract(W, C[:, :self.k])
        return self.directions(self._subtract(R, self.coefficients(R)), floor, scale)

    def complete_directions(self, W, C: np.ndarray, scale: float):
        """Every direction of ``W (I − QᵀQ)``: completing the basis."""
        R = self._subtract(W, C[:, :self.k])
        return self.directions(self._subtract(R, self.coefficients(R)), 0.0, scale)

    def directions(self, R, floor: float, scale: float):
        """Orthonormal rows spanning the directions of the residual ``R`` above ``floor`` (and above
        1e-6 of the strongest, and rounding of ``scale``), by the b×b Gram matrix ``R Rᵀ``."""
        G = self.cross(R, R)
        with serial_lapack():
            s2, V = scipy.linalg.eigh(G, driver="evr", check_finite=False)
        s = np.sqrt(np.clip(s2, 0.0, None))
        if s.size == 0 or s[-1] == 0.0:
            return self._empty()
        keep = s > max(floor, _RELATIVE_KEEP * s[-1], EPS * scale)
        if not keep.any():
            return self._empty()
        U = self._steps.combine(self.replicated((V[:, keep] / s[keep]).T), R)
        rho = float(np.sqrt(np.max(np.diag(G))))
        noise = rho < 1e-8 * scale
        # weak directions carry ~eps·max‖R_i‖/s of Q once normalised; a residual at rounding level is
        # mostly Q's rounding: project once more before orthonormalising (and again after, for noise)
        if self.k and (noise or bool(np.any(s[keep] < rho / 10))):
            U = self._subtract(U, self.coefficients(U))
        U = self._cholesky_qr2(U)
        if noise and self.k:
            U = self._cholesky_qr2(self._subtract(U, self.coefficients(U)))
        return U

    def _cholesky_qr2(self, U):
        """Orthonormal rows spanning the well-conditioned rows ``U``: ``U ← L⁻¹U`` with ``L Lᵀ = U Uᵀ``, twice
        (once when ``U``'s rows are orthonormal already to :data:`_CHOLQR_ONCE`)."""
        for sweep in range(2):
            G = self.cross(U, U)
            once = sweep == 0 and float(np.max(np.abs(G - np.eye(G.shape[0])), initial=0.0)) < _CHOLQR_ONCE
            with serial_lapack():
                L = np.linalg.cholesky(G)
                Linv = scipy.linalg.solve_triangular(L, np.eye(L.shape[0]), lower=True, check_finite=False)
            U = self._steps.combine(self.replicated(Linv), U)
            if once:
                break
        return U


#: columns of a product summed over the processes at a time (the gathered shares: processes × b × this)
SUM_COLUMNS = 65_536


def _sum_over_processes(W: np.ndarray) -> None:
    """``W`` ← the sum of every process's ``W``, in place, a slice of :data:`SUM_COLUMNS` columns at a
    time (the gathered shares cost processes × rows × that, not processes × rows × p)."""
    from jax.experimental import multihost_utils

    with jax.enable_x64(True):
        for a in range(0, W.shape[1], SUM_COLUMNS):
            part = np.ascontiguousarray(W[:, a:a + SUM_COLUMNS])
            W[:, a:a + SUM_COLUMNS] = np.asarray(multihost_utils.process_allgather(part)).sum(axis=0)
