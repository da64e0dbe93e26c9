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

This module is the certificate loop; the basis and :math:`T` are a
:class:`~hessrank.linalg._subspace.Subspace`, steps 2 and 5 are
:mod:`hessrank.linalg._orthogonalise`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np

from ..config import check_tolerances
from ..errors import ConfigError, DataError
from ._orthogonalise import (
    BLAS_CONTROLLER,
    NOISE_FLOOR,
    second_pass_level,
    serial_lapack,
)
from ._subspace import SKETCH_CHUNK, SKETCH_ROWS, Subspace
from .operator import as_operator
from .rank import EPS, RankInfo, non_finite_error, rank_from_eigenvalues, tolerance

__all__ = ["sketch_rank", "SketchResult", "Certificate", "Subspace", "residual_bound", "rank_info_from_ritz",
           "FAILURE_PROBABILITY", "NOISE_FLOOR", "KRYLOV_FLOOR", "SYMMETRY_TOL", "CERTIFIED", "COMPLETE_BASIS",
           "NOT_CERTIFIED", "SKETCH_CHUNK", "SKETCH_ROWS", "BLAS_CONTROLLER", "serial_lapack", "second_pass_level"]

#: the chance that a certificate is wrong (the Gaussian probes missed a direction)
FAILURE_PROBABILITY = 1e-12
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
#: a chunk's entries of T are skipped (left 0) when the estimated norm of each new row on it is at
#: most _T_SKIP_BELOW·eps·max‖u H‖ and at most _T_SKIP_CUT_SHARE of the cut (rounding is 1–10 eps·‖H‖)
_T_SKIP_BELOW = 64.0
_T_SKIP_CUT_SHARE = 1e-3


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
                start: Subspace | None = None, devices=None) -> SketchResult:
    """Numerical rank of the symmetric matrix ``H`` known through ``operator`` (rows ``V`` -> ``V H``).

    ``operator`` is a :class:`~hessrank.linalg.operator.SymmetricOperator` (anything callable
    with a size ``p``) or a plain function ``V (b, p) -> V @ H``, NumPy or JAX, with its size
    given as ``p`` (:func:`~hessrank.linalg.operator.as_operator`): e.g.
    ``sketch_rank(lambda V: V @ A, p=A.shape[0])``. Returns a :class:`SketchResult` with
    ``rank``, ``tol``, ``gap_decades`` and the ``certificate``. Raises
    :class:`~hessrank.ConfigError` for a missing ``p``, an output of the wrong shape, a
    matrix that is not symmetric or a tolerance that is not a finite number >= 0,
    :class:`~hessrank.DataError` for NaN or infinite products.

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
    ``devices``: None — the basis in host memory (NumPy); a number N or a
    :class:`jax.sharding.Mesh` — the basis sharded over the first N devices JAX sees
    (:mod:`hessrank.linalg._mesh`: its p columns split across them, small matrices
    replicated); ``auto`` — every device, except on one process of CPUs only (the host's path).
    """
    if block < 1 or probes < 1:
        raise ValueError(f"block and probes must be >= 1, got block={block}, probes={probes}")
    check_tolerances(rtol, atol)
    operator = as_operator(operator, p=p)
    p = int(operator.p)
    if start is None and devices is not None:
        from ._mesh import MeshSubspace, choose_devices
        mesh = choose_devices(devices)
        if mesh is not None:
            start = MeshSubspace(p, p if max_columns is None else max_columns, mesh)
    if start is not None and not isinstance(start, Subspace):
        import jax
        with jax.enable_x64(True):
            return _sketch(operator, rtol=rtol, atol=atol, block=block, probes=probes, seed=seed, start=start)
    return _sketch(operator, rtol=rtol, atol=atol, block=block, probes=probes, seed=seed,
                   start=start if start is not None else Subspace(p, p if max_columns is None else max_columns))


def _sketch(operator, *, rtol, atol, block: int, probes: int, seed: int, start) -> SketchResult:
    """The loop of :func:`sketch_rank` on the basis ``start`` (on the host or on devices)."""
    p = int(operator.p)
    rng = np.random.default_rng(seed)
    space = start
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
            Omega = space.probes(rng, b)
            Y = apply(Omega)
            scale = float(np.max(space.row_norms(Y)))
            w = float(np.max(space.row_norms(Omega)))
            _check_symmetric(space.cross(Y, Omega), scale * w, below=fixed_cut * w * w)
            count["rounds"] += 1
            t = time.perf_counter()
            R = space.residual(Y)   # Y is ours: overwritten
            Omega = Y = None
            clock["orthogonalisation"] += time.perf_counter() - t
            delta = residual_bound(float(np.max(space.row_norms(R))), b)
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
            U = space.directions(R, 0.0 if keep_all else floor, scale)
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
        if not space.all_finite(W):
            raise _non_finite(W)
        # U H Uᵀ, unit rows U: its rounding is relative to ‖H‖ ≈ the largest ‖u H‖ seen
        w_scale = float(np.max(space.row_norms(W)))
        h_scale = max(h_scale, w_scale)     # ≈ max|λ| (unit rows U)
        tol_now = tolerance(h_scale, p, rtol=rtol, atol=atol)
        skip = None if keep_all else min(_T_SKIP_BELOW * EPS * h_scale, _T_SKIP_CUT_SHARE * tol_now)
        C = space.append(U, W, skip_below=skip)             # C = W Qᵀ, rows of T
        _check_symmetric(C[:, space.k - U.shape[0]:], h_scale, below=fixed_cut)
        # block Krylov: the part of W = U H outside span(Q) (C serves as the first projection)
        if keep_all:
            nxt = space.complete_directions(W, C, h_scale)
        else:
            level = second_pass_level(tol_now, h_scale, space.k)
            nxt = space.krylov_directions(W, C, KRYLOV_FLOOR * EPS * h_scale, h_scale, level)
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


def _non_finite(W) -> DataError:
    return non_finite_error(np.asarray(W), "Hessian-vector products")


def _check_finite(Y: np.ndarray) -> None:
    if not np.isfinite(Y).all():
        raise _non_finite(Y)


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
