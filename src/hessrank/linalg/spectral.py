r"""Spectral quantities of a symmetric p×p matrix beyond its rank: top eigenpairs, trace,
eigenvalue density, outliers and condition number.

What is known about a matrix :math:`H` comes in one form, :class:`KnownSpectrum`: the
eigenvalues found (sorted by decreasing :math:`|\lambda|`), a bound ``bound`` such that
every eigenvalue of :math:`H` lies within it of a listed value or of 0, and the
eigenvectors on demand. Three sources fill it:

* a dense matrix (:func:`known_from_dense`): LAPACK ``syevd``, exact (``bound = 0``);
* a factor :math:`A` with :math:`H = A^\top A` (:func:`known_from_factor`): the non-zero
  eigenvalues :math:`\mu_j` of the Gram matrix :math:`A A^\top = U \,\mathrm{diag}(\mu)\, U^\top`,
  eigenvectors :math:`v_j = A^\top u_j / \sqrt{\mu_j}`, exact;
* the certified sketch (:func:`known_from_subspace`): Ritz values :math:`\theta_i` of
  :math:`T = Q H Q^\top` with ``bound`` :math:`2\delta` (:mod:`hessrank.linalg.sketch`:
  :math:`\lVert H - Q^\top T Q\rVert \le 2\delta`, so by Weyl the i-th largest eigenvalue of
  :math:`H` is within :math:`2\delta` of the i-th largest of the Ritz values padded with
  zeros), Ritz vectors :math:`U_k^\top Q` for :math:`T = U \Theta U^\top`.

From it and, when the list is not exact, the matrix's products:

* **trace** — exact (:math:`\sum\lambda`) when the list is exact. After a sketch:
  :math:`\mathrm{tr}\,H = \mathrm{tr}\,T + \mathrm{tr}\,(I-P)H(I-P)` with :math:`P = Q^\top Q`,
  the second term by Hutchinson's estimator on the deflated operator (the Hutch++ idea,
  with the certified basis as its low-rank part: the residual has norm at most
  :math:`\delta`), with its standard error; without any basis, XTrace (Epperly, Tropp &
  Webber 2024), which is Hutch++ with every sample used for both parts. Both are
  matfree's estimators (:func:`matfree.stochtrace.estimator_monte_carlo_mean_and_sem`,
  :func:`matfree.stochtrace.leave_one_out_xtrace`).
* **density** — :math:`\phi(x) = \frac1p \sum_j w_j\, \mathcal{N}(x;\lambda_j,\sigma^2)`:
  the exact eigenvalues with weight 1 each (the zeros included) when exact; stochastic
  Lanczos quadrature otherwise (Lin, Saad & Yang 2016; Ghorbani, Krishnan & Xiao 2019):
  for each of ``probes`` random unit vectors :math:`v`, ``steps`` Lanczos steps give a
  tridiagonal :math:`T_m = S\,\mathrm{diag}(\tau)\,S^\top`; nodes :math:`\tau_j`, weights
  :math:`S_{1j}^2` (they sum to 1), averaged over the probes. Lanczos is matfree's
  :func:`matfree.decomp.tridiag_sym` (full reorthogonalisation), vmapped over the probes,
  so the probes advance in lockstep and each step is one block product.
* **outliers** — :func:`count_outliers`; **condition** — :func:`condition_number`.

The operators are NumPy block products (rows ``V`` → rows of ``V H``); :func:`jax_matvec`
bridges them into JAX through :func:`jax.pure_callback` with ``vmap_method="broadcast_all"``:
a vmap over vectors becomes one call with the whole block.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
from matfree import decomp, stochtrace

from .rank import RankInfo
from .sketch import COMPLETE_BASIS

#: Gaussian kernel width of a density, as a fraction of the width of the spectrum
SIGMA_FRACTION = 0.01
#: points of the density grid
DENSITY_POINTS = 512
#: an eigenvalue is an outlier when log10|λ| exceeds the median of log10|λ| over the non-zero
#: spectrum by more than this many robust standard deviations (1.4826 × MAD)
OUTLIER_THRESHOLD = 3.0
_MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class KnownSpectrum:
    """What is known of the spectrum of a symmetric ``size``×``size`` matrix.

    ``values``: eigenvalues found, by decreasing magnitude (the others are zeros, up to
    ``bound``); ``bound``: every eigenvalue lies within it of a listed value or of 0
    (0: ``values`` are exact); ``vectors(k)``: the unit eigenvectors of ``values[:k]`` as
    rows (k×size), valid only until the source is changed; ``trace``: the exact trace
    when known (the diagonal's sum, not the eigenvalues': it has no cancellation error);
    ``basis`` and ``basis_trace``: for a sketch, its orthonormal rows ``Q`` (a view, not a
    copy: valid while the sketch is) and ``tr(Q H Qᵀ)`` (for a deflated trace estimate).
    """

    values: np.ndarray
    size: int
    bound: float
    vectors: Callable[[int], np.ndarray]
    source: str
    trace: float | None = None
    basis: np.ndarray | None = None
    basis_trace: float | None = None

    @property
    def exact(self) -> bool:
        """Whether ``values`` are the exact spectrum (every eigenvalue not listed is 0)."""
        return self.bound == 0.0


def _by_magnitude(values, vecs=None):
    order = np.argsort(-np.abs(values), kind="stable")
    return values[order], (None if vecs is None else vecs[:, order])


def known_from_dense(H, *, vectors: bool = False) -> KnownSpectrum:
    """The exact spectrum of the dense symmetric ``H`` (``eigh`` when ``vectors``, else ``eigvalsh``).
    A float64 ``H`` is overwritten by LAPACK (no p×p copy); pass a copy to keep it."""
    H = np.asarray(H, dtype=np.float64)
    trace = float(np.trace(H))
    if vectors:
        lam, V = scipy.linalg.eigh(H, driver="evd", check_finite=False, overwrite_a=True)
        lam, V = _by_magnitude(lam, V)
        return KnownSpectrum(lam, H.shape[0], 0.0, lambda k: np.ascontiguousarray(V[:, :k].T),
                             "eigh of the dense matrix", trace=trace)
    lam, _ = _by_magnitude(scipy.linalg.eigvalsh(H, driver="evd", check_finite=False, overwrite_a=True))
    return KnownSpectrum(lam, H.shape[0], 0.0, _no_vectors, "eigvalsh of the dense matrix", trace=trace)


def known_from_factor(A, *, mu=None, U=None) -> KnownSpectrum:
    """The exact spectrum of ``H = AᵀA`` (``A`` m×p) from the m×m Gram matrix ``A Aᵀ = U diag(μ) Uᵀ``
    (``mu``, ``U`` when already computed); eigenvectors ``Aᵀu_j/√μ_j`` (the non-zero ones only)."""
    A = np.asarray(A, dtype=np.float64)
    if mu is None or U is None:
        mu, U = scipy.linalg.eigh(A @ A.T, driver="evd", check_finite=False)
    mu, U = _by_magnitude(np.clip(mu, 0.0, None), U)

    def vectors(k):
        k = min(k, int(np.count_nonzero(mu > 0)))
        return (U[:, :k] / np.sqrt(mu[:k])).T @ A

    return KnownSpectrum(mu, A.shape[1], 0.0, vectors, f"eigh of the {A.shape[0]}×{A.shape[0]} Gram matrix",
                         trace=float(np.einsum("ij,ij->", A, A)))            # tr AᵀA = ‖A‖_F²


def known_from_subspace(space, delta: float, *, values=None, vectors: bool = False) -> KnownSpectrum:
    """Ritz values of a sketch's :class:`~hessrank.linalg.Subspace` (``T = Q H Qᵀ``, residual
    bound ``delta``): within ``2·delta`` of the eigenvalues; with ``vectors``, Ritz vectors
    ``U_kᵀ Q`` for ``T = U Θ Uᵀ``. ``values``: the Ritz values when already computed."""
    T = np.array(space.T)
    basis_trace = float(np.trace(T))
    fetch = _no_vectors
    if vectors and space.k:
        theta, S = _by_magnitude(*scipy.linalg.eigh(T, driver="evd", check_finite=False))
        Q = space.Q

        def fetch(k):
            return S[:, :k].T @ Q
    elif values is not None:
        theta, _ = _by_magnitude(np.asarray(values, dtype=np.float64))
    else:
        theta, _ = _by_magnitude(space.ritz_values())
    complete = space.k == space.p
    if complete:   # T is an orthogonal similarity of H
        return KnownSpectrum(theta, space.p, 0.0, fetch, COMPLETE_BASIS, trace=basis_trace)
    return KnownSpectrum(theta, space.p, 2.0 * float(delta), fetch,
                         f"Ritz values of a certified {space.k}-vector sketch", basis=space.Q,
                         basis_trace=basis_trace)


def _no_vectors(k):
    raise ValueError("eigenvectors were not computed; build the KnownSpectrum with vectors=True")


# --------------------------------------------------------------------------- top, outliers, condition
def top_eigenvalues(known: KnownSpectrum, k: int) -> np.ndarray:
    """The ``k`` eigenvalues of largest magnitude, zeros padded where fewer are non-zero."""
    out = np.zeros(min(k, known.size))
    m = min(out.size, known.values.size)
    out[:m] = known.values[:m]
    return out


def nonzero_magnitudes(known: KnownSpectrum, info: RankInfo) -> np.ndarray:
    """``|λ|`` of the eigenvalues above the rank's cut ``info.tol``, decreasing."""
    mags = np.abs(known.values)
    return mags[mags > info.tol]


def count_outliers(mags, *, threshold: float = OUTLIER_THRESHOLD) -> int:
    r"""Eigenvalues separated from the bulk of the non-zero spectrum ``mags`` (the
    :math:`|\lambda|` above the cut): those with
    :math:`\log_{10}|\lambda| > m + c\cdot 1.4826\,\mathrm{MAD}`, :math:`m` the median and MAD the
    median absolute deviation of :math:`\log_{10}|\lambda|`, :math:`c` = ``threshold``. On the
    log scale because Hessian spectra span many decades; the MAD because the outliers
    must not move the bulk's own scale. Fewer than 3 values: no bulk, 0 outliers."""
    logs = np.log10(np.asarray(mags, dtype=np.float64))
    if logs.size < 3:
        return 0
    med = float(np.median(logs))
    spread = _MAD_TO_SIGMA * float(np.median(np.abs(logs - med)))
    return int(np.count_nonzero(logs > med + threshold * spread)) if spread > 0 else 0


def condition_number(mags) -> float | None:
    """``max|λ| / min|λ|`` over the non-zero spectrum ``mags``; None when it is empty."""
    mags = np.asarray(mags, dtype=np.float64)
    return float(mags.max() / mags.min()) if mags.size else None


# --------------------------------------------------------------------------- JAX bridge
def jax_matvec(operator) -> Callable:
    """``v -> H v`` as a JAX function of a length-p vector, calling the NumPy block
    ``operator`` (rows ``V`` -> rows of ``V H``) through :func:`jax.pure_callback`; under
    :func:`jax.vmap` the whole batch of vectors is one call.

    The vectors cross the callback as pairs of uint32 holding the float64 bits: XLA may run
    the callback on one of its own threads (it did at p = 110,100), where the caller's scoped
    ``jax.enable_x64`` does not hold, and JAX would cast float64 arguments and results to
    float32 there. Integers of 32 bits cross unchanged, whatever the thread's setting."""
    p = int(operator.p)

    def host(bits):
        bits = np.ascontiguousarray(bits, dtype=np.uint32)
        v = bits.view(np.float64).reshape(bits.shape[:-1])
        out = np.ascontiguousarray(operator(v.reshape(-1, p)), dtype=np.float64)
        return out.view(np.uint32).reshape(bits.shape)

    def matvec(v):
        bits = jax.lax.bitcast_convert_type(v, jnp.uint32)                   # (…, p, 2)
        out = jax.pure_callback(host, jax.ShapeDtypeStruct(bits.shape, jnp.uint32), bits,
                                vmap_method="broadcast_all")
        return jax.lax.bitcast_convert_type(out, jnp.float64)

    return matvec


# --------------------------------------------------------------------------- trace
@dataclass(frozen=True)
class TraceEstimate:
    """``value`` of the trace, its standard error ``stderr`` (None when exact), the number of
    ``products`` with the matrix it used and ``method``."""

    value: float
    stderr: float | None
    products: int
    method: str


def exact_trace(known: KnownSpectrum) -> TraceEstimate:
    """``Σ λ`` of an exact spectrum."""
    if not known.exact:
        raise ValueError("the spectrum is not exact: estimate the trace from products instead")
    if known.trace is not None:
        return TraceEstimate(known.trace, None, 0, "exact: sum of the diagonal")
    return TraceEstimate(float(np.sum(known.values)), None, 0, "exact: sum of the eigenvalues")


def hutchinson_deflated_trace(operator, basis: np.ndarray, basis_trace: float, *, samples: int = 32,
                              seed: int = 0) -> TraceEstimate:
    r""":math:`\mathrm{tr}(Q H Q^\top) + \mathrm{tr}((I-P)H(I-P))`, the second term by Hutchinson's
    estimator with ``samples`` Gaussian probes projected out of span(``basis``) (matfree's
    Monte-Carlo estimator with its standard error); ``basis_trace`` is the first term."""
    p = int(operator.p)
    est = stochtrace.estimator_monte_carlo_mean_and_sem(stochtrace.monte_carlo_trace(),
                                                        stochtrace.sampler_normal(jnp.zeros(p), num=samples))
    mean, sem = est(jax_matvec(_Deflated(operator, basis)), jax.random.PRNGKey(seed))
    return TraceEstimate(basis_trace + float(mean), _sample_sem(float(sem), samples), samples,
                         f"tr(QHQᵀ) of the sketch + Hutchinson on the deflated residual, {samples} probes")


@dataclass(frozen=True)
class _Deflated:
    """Rows ``V`` -> rows of ``(I − P) H (I − P) V``, ``P = QᵀQ``: in NumPy, so that the k×p
    basis is not copied into JAX."""

    operator: Callable
    Q: np.ndarray

    @property
    def p(self) -> int:
        return int(self.operator.p)

    def __call__(self, V):
        V = V - (V @ self.Q.T) @ self.Q
        W = self.operator(V)
        return W - (W @ self.Q.T) @ self.Q


def xtrace(operator, *, samples: int = 32, seed: int = 0) -> TraceEstimate:
    """The trace of ``operator`` by XTrace (matfree), ``samples`` Gaussian probes and
    ``2·samples`` products, with the leave-one-out standard error. ``2·samples >= p``:
    the matrix is formed from ``p`` products and its trace is exact."""
    p = int(operator.p)
    samples = max(2, min(samples, p))
    if 2 * samples >= p:
        H = operator(np.eye(p))
        return TraceEstimate(float(np.trace(H)), None, p, "exact: the matrix formed from p products")
    est = stochtrace.estimator_leave_one_out_mean_and_sem(stochtrace.leave_one_out_xtrace(),
                                                          stochtrace.sampler_normal(jnp.zeros(p), num=samples))
    mean, sem = est(jax_matvec(operator), jax.random.PRNGKey(seed))
    return TraceEstimate(float(mean), _sample_sem(float(sem), samples), 2 * samples,
                         f"XTrace, {samples} probes")


def _sample_sem(sem_population: float, samples: int) -> float:
    # matfree divides the population standard deviation (ddof = 0) by √s; the standard
    # error of a mean uses the sample standard deviation (ddof = 1)
    return sem_population * math.sqrt(samples / (samples - 1))


# --------------------------------------------------------------------------- density
@dataclass(frozen=True)
class Density:
    """An eigenvalue density ``y`` on the grid ``x`` (it integrates to 1), the kernel
    width ``sigma``, and how it was obtained: ``probes`` × ``lanczos_steps`` for stochastic
    Lanczos quadrature (both None when from the exact spectrum)."""

    x: np.ndarray
    y: np.ndarray
    sigma: float
    method: str
    probes: int | None = None
    lanczos_steps: int | None = None
    #: the quadrature behind it: eigenvalues (or Lanczos nodes) and their weights (summing to 1)
    nodes: np.ndarray | None = None
    weights: np.ndarray | None = None

    def to_dict(self) -> dict:
        """JSON-ready values."""
        out = {"x": self.x.tolist(), "y": self.y.tolist(), "sigma": self.sigma, "method": self.method,
               "probes": self.probes, "lanczos_steps": self.lanczos_steps}
        if self.nodes is not None:
            out.update(nodes=self.nodes.tolist(), weights=self.weights.tolist())
        return out


def density_grid(lo: float, hi: float, *, points: int = DENSITY_POINTS,
                 sigma_fraction: float = SIGMA_FRACTION) -> tuple[np.ndarray, float]:
    """A uniform grid over ``[lo, hi]`` (0 included) widened by 6σ each side (the kernel mass
    left outside is 2e-9), and the kernel width ``σ = sigma_fraction · (hi − lo)`` (at least 4
    grid steps, so that the trapezoid rule integrates the kernel to working accuracy)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    width = hi - lo if hi > lo else 1.0
    sigma = sigma_fraction * width
    step = (width + 12 * sigma) / (points - 1)
    sigma = max(sigma, 4 * step)
    return np.linspace(lo - 6 * sigma, hi + 6 * sigma, points), float(sigma)


def smoothed_density(nodes, weights, x, sigma: float) -> np.ndarray:
    """``Σ_j w_j N(x; nodes_j, σ²)`` on the grid ``x``."""
    nodes = np.asarray(nodes, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    z = (x[:, None] - nodes[None, :]) / sigma
    return (np.exp(-0.5 * z * z) @ weights) / (sigma * math.sqrt(2 * math.pi))


def exact_density(known: KnownSpectrum, **grid) -> Density:
    """The Gaussian-smoothed histogram of an exact spectrum, the ``size − len(values)``
    zeros included (weight ``1/size`` per eigenvalue)."""
    if not known.exact:
        raise ValueError("the spectrum is not exact: use slq_density")
    lam = known.values
    zeros = known.size - lam.size
    x, sigma = density_grid(float(lam.min(initial=0.0)), float(lam.max(initial=0.0)), **grid)
    nodes = np.append(lam, 0.0)
    weights = np.append(np.ones(lam.size), zeros) / known.size
    return Density(x, smoothed_density(nodes, weights, x, sigma), sigma, "smoothed histogram of the exact spectrum",
                   nodes=nodes, weights=weights)


def lanczos_quadrature(operator, *, probes: int = 8, steps: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of stochastic Lanczos quadrature, each of shape (probes, steps):
    ``steps`` Lanczos steps (matfree, full reorthogonalisation) from each of ``probes``
    random unit vectors; each probe's weights sum to 1."""
    p = int(operator.p)
    steps = max(1, min(steps, p))
    tridiag = decomp.tridiag_sym(steps, reortho="full")
    matvec = jax_matvec(operator)
    v0 = jax.random.normal(jax.random.PRNGKey(seed), (probes, p), dtype=jnp.float64)
    v0 = v0 / jnp.linalg.norm(v0, axis=1, keepdims=True)
    J = np.asarray(jax.vmap(lambda v: tridiag(matvec, v).J_small)(v0))
    nodes, weights = np.zeros((probes, steps)), np.zeros((probes, steps))
    for i in range(probes):
        m = _krylov_dimension(J[i])
        theta, S = scipy.linalg.eigh(J[i, :m, :m], check_finite=False)
        nodes[i, :m], weights[i, :m] = theta, S[0] ** 2
    return nodes, weights


def _krylov_dimension(J) -> int:
    """Steps before the Lanczos recurrence broke down (an invariant subspace reached): the
    leading block of ``J`` up to the first off-diagonal that is 0 at working precision or not
    finite. Past it ``J`` is block diagonal, so its eigenvectors there carry no weight on
    ``e_1`` — or, when the probe's Krylov space is {0}'s (``H v = 0``), the normalisation of
    a zero vector filled it with NaN."""
    diag, off = np.diag(J), np.abs(np.diag(J, 1))
    scale = np.max(np.abs(J[np.isfinite(J)]), initial=0.0)
    broken = ~np.isfinite(off) | (off <= 8 * np.finfo(np.float64).eps * J.shape[0] * scale) | \
        ~np.isfinite(diag[1:])
    return int(np.argmax(broken)) + 1 if broken.any() else J.shape[0]


def slq_density(operator, *, probes: int = 8, steps: int = 64, seed: int = 0, **grid) -> Density:
    """The eigenvalue density of ``operator`` by stochastic Lanczos quadrature
    (:func:`lanczos_quadrature`), smoothed on a grid over the range of the nodes."""
    nodes, weights = lanczos_quadrature(operator, probes=probes, steps=steps, seed=seed)
    x, sigma = density_grid(float(nodes.min()), float(nodes.max()), **grid)
    steps = nodes.shape[1]                                      # at most the size of the matrix
    nodes, weights = nodes.ravel(), weights.ravel() / probes
    y = smoothed_density(nodes, weights, x, sigma)
    return Density(x, y, sigma, "stochastic Lanczos quadrature", probes, steps, nodes=nodes, weights=weights)


def zero_density(tol: float, **grid) -> Density:
    """The density of a matrix of rank 0 at the cut ``tol``: every eigenvalue lies within
    ``±tol`` of 0, so all the mass is at 0 (one node, weight 1), smoothed on a grid over
    ``[−tol, tol]`` (``[−1, 1]`` when ``tol`` is 0)."""
    x, sigma = density_grid(-tol, tol, **grid) if tol > 0 else density_grid(0.0, 0.0, **grid)
    nodes, weights = np.zeros(1), np.ones(1)
    return Density(x, smoothed_density(nodes, weights, x, sigma), sigma,
                   "rank 0 at the cut: all eigenvalues at 0", nodes=nodes, weights=weights)


def log_density(nodes, weights, cut: float, *, points: int = 400, decades: float = 0.1):
    """The density per unit of ``u = sign(λ)·log10(1 + |λ|/cut)`` (a symmetric-log coordinate,
    linear within ``±cut``), smoothed with a Gaussian of ``decades`` in ``u``: what a
    symmetric-log axis shows. Returns ``(λ on the grid, density per unit u)``."""
    nodes = np.asarray(nodes, dtype=np.float64)
    u = np.sign(nodes) * np.log10(1.0 + np.abs(nodes) / cut)
    grid = np.linspace(min(u.min(), 0.0) - 5 * decades, max(u.max(), 0.0) + 5 * decades, points)
    y = smoothed_density(u, weights, grid, decades)
    return np.sign(grid) * cut * (10.0 ** np.abs(grid) - 1.0), y


def density_moments(density: Density) -> tuple[float, float, float]:
    """``(∫φ, ∫xφ, ∫x²φ)`` of a density by the trapezoid rule on its grid."""
    x, y = density.x, density.y
    return float(np.trapezoid(y, x)), float(np.trapezoid(x * y, x)), float(np.trapezoid(x * x * y, x))


def slq_memory_bytes(p: int, probes: int, steps: int) -> int:
    """Bytes held by :func:`lanczos_quadrature`: each probe's ``steps`` Lanczos vectors (full
    reorthogonalisation keeps them all), a block of products and a copy."""
    return 8 * p * probes * (steps + 4)
