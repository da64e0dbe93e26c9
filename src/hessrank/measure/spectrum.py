r"""Spectra of H_L, H_o, H_F beyond the rank: top eigenvalues, trace, density, outliers, condition.

Configure, then call: :class:`SpectrumOptions` says what to compute; then

* :func:`matrix_spectrum` — one dense symmetric matrix (everything exact);
* :func:`operator_spectrum` — one matrix known by its products (a
  :class:`~hessrank.curvature.CurvatureOperator`): the certified sketch, then Ritz values
  with their bound :math:`2\delta`, a deflated trace estimate and stochastic Lanczos
  quadrature (:mod:`hessrank.linalg.spectral`);
* :func:`measure_spectra` — H_L, H_o, H_F of a model on data, ``(model, loss, θ, X, Y)``
  as :func:`~hessrank.measure.measure_ranks` takes them, dense or matrix-free as the plan says
  (matrix-free reuses the rank computation: each matrix's spectrum is taken while its
  sketch's basis is intact);
* :func:`spectrum` — the network of a :class:`~hessrank.RunConfig` (the MLP, the CNN or a
  user's model file);
* :func:`hessian_spectrum` — any JAX model ``f(params, X)`` (the interface of
  :func:`~hessrank.hessian_ranks`).

With ``blocks``, each diagonal block :math:`H_{bb}` (:mod:`hessrank.measure.blocks`) gets the
same summary less the eigenvectors: its top eigenvalues, its rank counted at the whole matrix's
tolerance (so the outliers and condition number are taken over the same cut), its trace
— exact when the matrix is dense or :math:`H_o = A^\top A` (the sum of the block's diagonal,
:math:`\lVert A_b\rVert_F^2`); matrix-free, :math:`\mathrm{tr}(Q H_{bb} Q^\top)` of the block's own
certified sketch plus Hutchinson on the deflated restricted operator — and its density by the
whole matrix's rule (:func:`summarize`): the smoothed histogram of the block's exact eigenvalues
(dense, :math:`A_b^\top A_b`, or a sketch that spans the block), otherwise stochastic Lanczos
quadrature on the restricted operator with the same probes and Lanczos steps (at most the
block's size). A matrix of rank 0 at its cut (each layer's diagonal block of :math:`H_F` for
a linear network) has all its mass at 0 (:func:`~hessrank.linalg.spectral.zero_density`).

Each matrix gives a :class:`MatrixSpectrum`; :meth:`SpectrumResult.to_dict` is what
``hessian-rank spectrum --json`` prints. Memory is planned before any work
(:func:`plan_spectrum`): the sketches' budget shrinks by what the spectral extras hold,
and a request whose extras cannot fit is refused with the estimate.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .._torch import is_torch_input
from ..config import SPECTRUM_DEFAULTS, RunConfig
from ..curvature import CurvatureSource, float64_scope, in_float64, jax_source
from ..errors import ConfigError
from ..linalg import RankInfo, rank_from_eigenvalues, sketch_rank
from ..linalg._mesh import device_mesh
from ..linalg.operator import as_operator
from ..linalg.spectral import (
    Density,
    KnownSpectrum,
    TraceEstimate,
    condition_number,
    count_outliers,
    exact_density,
    exact_trace,
    hutchinson_deflated_trace,
    known_from_dense,
    known_from_factor,
    known_from_subspace,
    nonzero_magnitudes,
    slq_density,
    slq_memory_bytes,
    top_eigenvalues,
    xtrace,
    zero_density,
)
from ..matrices import DENSE, H_O_GRAM, MATRICES
from ..models import function_model, get_loss
from .blocks import Block, at_whole_tolerance, dense_block_known, factor_block_known, resolve_blocks
from .matrixfree import matrix_free_source_ranks
from .model import model_source, prepare_inputs
from .network import network_label
from .plan import MethodPlan, _gib, available_memory_bytes, dense_memory_bytes, plan_method
from .provenance import peak_rss_bytes, provenance
from .report import matrix_spectrum_summary, spectrum_summary, torch_fields
from .results import RankedResult
from .run import build, curvature_source
from .scale import at_problem_scale
from .threads import blas_threads

#: the spectral extras (Lanczos vectors, eigenvectors, trace probes) may take this share of the free memory
EXTRA_SHARE = 0.25


@dataclass(frozen=True)
class SpectrumOptions:
    """What to compute for each matrix: the ``top`` eigenvalues of largest magnitude (and
    their ``eigenvectors``), the ``trace`` (stochastic ones with ``trace_samples`` probes),
    the ``density`` (stochastic Lanczos quadrature: ``probes`` × ``lanczos_steps``, on
    ``density_points`` grid points); ``seed`` seeds every random probe."""

    top: int = SPECTRUM_DEFAULTS["top"]
    trace: bool = SPECTRUM_DEFAULTS["trace"]
    density: bool = SPECTRUM_DEFAULTS["density"]
    eigenvectors: bool = SPECTRUM_DEFAULTS["eigenvectors"]
    trace_samples: int = SPECTRUM_DEFAULTS["trace_samples"]
    probes: int = SPECTRUM_DEFAULTS["probes"]
    lanczos_steps: int = SPECTRUM_DEFAULTS["lanczos_steps"]
    density_points: int = SPECTRUM_DEFAULTS["density_points"]
    seed: int = SPECTRUM_DEFAULTS["seed"]

    def validate(self) -> SpectrumOptions:
        """Raise :class:`ConfigError` naming the first bad setting; return ``self``."""
        for name, low in (("top", 1), ("trace_samples", 2), ("probes", 1), ("lanczos_steps", 1),
                          ("density_points", 16)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError.invalid(name, value, f"give an integer >= {low}")
        for name in ("trace", "density", "eigenvectors"):
            if not isinstance(getattr(self, name), bool | np.bool_):
                raise ConfigError.invalid(name, getattr(self, name), "give True or False")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer) or not 0 <= self.seed < 2**32:
            raise ConfigError.invalid("seed", self.seed, "give an integer in 0..2**32-1")
        return self

    def extra_bytes(self, p: int) -> int:
        """Bytes the spectral extras of one matrix hold beyond its rank computation. A diagonal
        block's extras are those of a matrix of its size s < p, held one block at a time after the
        whole matrices' are released (beside the block's sketch, which is within the rank
        computation's budget), so ``extra_bytes(p)`` bounds them too."""
        extra = 8 * p * (3 * self.trace_samples if self.trace else 0)
        if self.density:
            extra = max(extra, slq_memory_bytes(p, self.probes, self.lanczos_steps))
        if self.eigenvectors:
            extra += 8 * p * self.top * len(MATRICES)       # kept for all three matrices
        return extra


@dataclass
class MatrixSpectrum:
    """The spectral summary of one symmetric matrix.

    ``top``: the largest-magnitude eigenvalues; ``top_bound``: each lies within it of an
    eigenvalue (0: exact); ``vectors``: their eigenvectors as rows (or None);
    ``trace`` (a :class:`~hessrank.linalg.spectral.TraceEstimate`), ``density``
    (a :class:`~hessrank.linalg.spectral.Density`), ``outliers``
    (:func:`~hessrank.linalg.spectral.count_outliers` over the eigenvalues above the cut),
    ``condition`` (``max|λ|/min|λ|`` over them; None where the rank is not certified),
    ``rank``/``tol``/``gap_decades`` of the rank rule, and ``source`` (how the values were found).
    """

    name: str
    size: int
    rank: int
    tol: float
    gap_decades: float | None
    top: np.ndarray
    top_bound: float
    source: str
    outliers: int
    condition: float | None
    certified: bool = True
    trace: TraceEstimate | None = None
    density: Density | None = None
    vectors: np.ndarray | None = None

    def __repr__(self) -> str:
        head = ", ".join(f"{v:.4g}" for v in self.top[:3]) + (", …" if self.top.size > 3 else "")
        trace = "" if self.trace is None else f", trace={self.trace.value:.6g}"
        return (f"MatrixSpectrum(name={self.name!r}, size={self.size}, rank={self.rank}, tol={self.tol:.3g}, "
                f"top=[{head}]{trace}, outliers={self.outliers}, certified={self.certified})")

    def summary(self) -> str:
        """A short table: rank, largest eigenvalue, trace, outliers, condition, and the top eigenvalues."""
        return matrix_spectrum_summary(self)

    def to_dict(self) -> dict:
        """The JSON form: the keys of ``hessian-rank spectrum --json``."""
        t = self.trace
        return {
            "top": [float(v) for v in self.top],
            "top_bound": self.top_bound,
            "trace": None if t is None else t.value,
            "trace_stderr": None if t is None else t.stderr,
            "trace_products": None if t is None else t.products,
            "trace_method": None if t is None else t.method,
            "density": None if self.density is None else self.density.to_dict(),
            "outliers": self.outliers,
            "condition": self.condition,
            "rank": self.rank,
            "tol": self.tol,
            "gap_decades": None if self.gap_decades is None or not math.isfinite(self.gap_decades)
            else float(self.gap_decades),
            "certified": self.certified,
            "size": self.size,
            "source": self.source,
        }


def summarize(name: str, known: KnownSpectrum, info: RankInfo, operator, options: SpectrumOptions, *,
              certified: bool = True, seed: int | None = None) -> MatrixSpectrum:
    """The :class:`MatrixSpectrum` of one matrix from what is known of its spectrum and, when
    that is not exact, its ``operator`` (rows ``V`` -> ``V H``)."""
    seed = options.seed if seed is None else seed
    nonzero = nonzero_magnitudes(known, info)
    top = top_eigenvalues(known, options.top)
    out = MatrixSpectrum(name=name, size=known.size, rank=info.rank, tol=info.tol, gap_decades=info.gap_decades,
                         top=top, top_bound=known.bound, source=known.source, outliers=count_outliers(nonzero),
                         condition=condition_number(nonzero) if certified else None, certified=certified)
    if options.eigenvectors:
        out.vectors = known.vectors(min(options.top, known.values.size))
    if options.trace:
        if known.exact:
            out.trace = exact_trace(known)
        elif known.basis is not None:
            out.trace = hutchinson_deflated_trace(operator, known.basis, known.basis_trace,
                                                  samples=options.trace_samples, seed=seed)
        else:
            out.trace = xtrace(operator, samples=options.trace_samples, seed=seed)
    if options.density:
        grid = {"points": options.density_points}
        if info.rank == 0:   # every eigenvalue within the cut of 0 (SLQ would only sample rounding)
            out.density = zero_density(info.tol, **grid)
        elif known.exact:
            out.density = exact_density(known, **grid)
        else:
            out.density = slq_density(operator, probes=options.probes, steps=options.lanczos_steps, seed=seed,
                                      **grid)
    return out


@in_float64
def matrix_spectrum(H, options: SpectrumOptions | None = None, *, name: str = "H", rtol: float | None = None,
                    atol: float | None = None) -> MatrixSpectrum:
    """The spectral summary of the dense symmetric matrix ``H``: everything exact."""
    options = (options or SpectrumOptions()).validate()
    H = np.asarray(H, dtype=np.float64)
    if H.ndim != 2 or H.shape[0] != H.shape[1]:
        raise ValueError(f"matrix_spectrum needs a square matrix, got shape {H.shape}")
    known = known_from_dense(H.copy(), vectors=options.eigenvectors)
    info = rank_from_eigenvalues(known.values, H.shape[0], rtol=rtol, atol=atol)
    return summarize(name, known, info, None, options)


@in_float64
def operator_spectrum(operator, options: SpectrumOptions | None = None, *, p: int | None = None,
                      rtol: float | None = None, atol: float | None = None,
                      max_columns: int | None = None) -> MatrixSpectrum:
    """The spectral summary of a symmetric matrix ``H`` known only through its products.

    Args:
        operator: a :class:`~hessrank.SymmetricOperator` or any function ``V (b, p) -> V @ H``
            (NumPy or JAX) of a symmetric p×p matrix, with ``p`` given.
        options: what to compute (:class:`SpectrumOptions`; default: top 20, trace, density).
        p: the size of ``H`` when ``operator`` is a plain function.
        rtol, atol: the rank tolerance (default ``max|λ|·p·eps``).
        max_columns: cap on the sketch's basis (memory: ``max_columns`` rows of length p).

    Returns:
        a :class:`MatrixSpectrum`: the certified sketch's rank, tolerance and gap
        (:func:`~hessrank.sketch_rank`), its Ritz values as ``top`` (each within ``top_bound``
        of an eigenvalue), the trace (exact on the basis plus a deflated Hutchinson estimate)
        and the density (stochastic Lanczos quadrature).

    Raises:
        ConfigError: a bad setting, a missing ``p``, products of the wrong shape, or a matrix
            that is not symmetric.
        DataError: products with NaN or infinite values.
    """
    options = (options or SpectrumOptions()).validate()
    operator = as_operator(operator, p=p)
    res = sketch_rank(operator, rtol=rtol, atol=atol, seed=options.seed, max_columns=max_columns)
    known = known_from_subspace(res.subspace, res.certificate.residual_bound, values=res.info.eigenvalues,
                                vectors=options.eigenvectors)
    return summarize(getattr(operator, "name", "H"), known, res.info, operator, options,
                     certified=res.certificate.certified, seed=options.seed + 3)


# --------------------------------------------------------------------------- the three matrices of a model
def plan_spectrum(method: str, p: int, n: int, K: int, options: SpectrumOptions, *,
                  threads: int | None = None) -> MethodPlan:
    """:func:`~hessrank.measure.plan_method` for a spectrum: refuse (ConfigError) when the
    spectral extras would take more than :data:`EXTRA_SHARE` of the free memory, and take
    them out of a matrix-free budget. ``threads``: BLAS threads (None: the cores this process may use)."""
    extra = options.extra_bytes(p)
    have = available_memory_bytes()
    if extra > EXTRA_SHARE * have:
        param, value = ("lanczos_steps", options.lanczos_steps) if options.density else ("top", options.top)
        raise ConfigError.invalid(param, value, f"p = {p}: the spectral extras (Lanczos vectors, eigenvectors, "
                                                f"trace probes) need about {_gib(extra)} but {_gib(have)} is "
                                                "available; use fewer probes, Lanczos steps or eigenvectors",
                                  quoted=False)
    plan = plan_method(method, p, n, K, threads=threads)
    if plan.method == DENSE and dense_memory_bytes(p) + extra > available_memory_bytes():
        raise ConfigError.invalid("method", method, f"p = {p}: dense matrices and spectral extras need about "
                                                    f"{_gib(dense_memory_bytes(p) + extra)} but {_gib(have)} is "
                                                    "available; use method matrix-free", quoted=False)
    if plan.budget is not None:
        plan = MethodPlan(plan.method, plan.reason, plan.h_o, plan.memory, max(0.0, plan.budget - extra),
                          threads=plan.threads)
    return plan


@dataclass
class BlockSpectrum:
    """The spectral summaries of one diagonal block of H_L, H_o, H_F: ``size`` parameters,
    its ``leaves``, and per matrix a :class:`MatrixSpectrum` (no eigenvectors) whose rank is
    counted at the whole matrix's tolerance."""

    size: int
    leaves: tuple[str, ...]
    matrices: dict[str, MatrixSpectrum]

    def to_dict(self) -> dict:
        """``{"size", "leaves", "H_L": {...}, "H_o": {...}, "H_F": {...}}``."""
        return {"size": self.size, "leaves": list(self.leaves),
                **{k: self.matrices[k].to_dict() for k in MATRICES}}


def measure_spectra(plan: MethodPlan, model, loss, theta, X, Y, config: RunConfig,
                    options: SpectrumOptions, *, blocks: dict[str, Block] | None = None):
    """Spectral summaries of H_L, H_o, H_F on the samples ``X, Y`` as ``plan`` says, with the
    batch size, tolerance and seed of ``config``: ``({name: MatrixSpectrum}, timings,
    method_details, {block: BlockSpectrum})`` (the last empty without ``blocks``, from
    :func:`~hessrank.measure.blocks.resolve_blocks`)."""
    source = curvature_source(model, loss, theta, X, Y, batch_size=config.effective_batch_size(X.shape[0]))
    return measure_source_spectra(plan, source, options, rtol=config.rtol, atol=config.atol, seed=config.seed,
                                  blocks=blocks or {})


def measure_source_spectra(plan: MethodPlan, source: CurvatureSource, options: SpectrumOptions, *, rtol, atol,
                           seed, blocks, devices=None):
    """:func:`measure_spectra` of any front end's :class:`~hessrank.curvature.CurvatureSource`; ``devices``:
    the JAX devices a matrix-free run's products split the samples over (the bases stay in host memory)."""
    p = source.p
    found: dict[str, MatrixSpectrum] = {}
    per_block = dataclasses.replace(options, eigenvectors=False)
    found_blocks: dict[str, dict[str, MatrixSpectrum]] = {b: {} for b in blocks}
    block_seed = {(b, m): options.seed + 10 + 3 * i + j for i, b in enumerate(blocks) for j, m in enumerate(MATRICES)}
    if plan.method != DENSE:
        seeds = {"H_o": 3, "H_F": 4, "H_L": 5}

        def observe(name, info, known, operator):
            found[name] = summarize(name, known(options.eigenvectors), info, operator, options,
                                    seed=options.seed + seeds[name])

        def observe_block(block, name, info, known, operator):
            found_blocks[block][name] = summarize(name, known, info, operator, per_block, seed=block_seed[block, name])

        mf = matrix_free_source_ranks(source, rtol=rtol, atol=atol, memory_bytes=plan.budget, seed=seed,
                                      observe=observe, blocks=blocks, observe_block=observe_block if blocks else None,
                                      threads=plan.threads, devices=devices)
        for name, det in mf.details.items():
            _mark_certified(found[name], det)
        for b, ranks in mf.blocks.items():
            for name, det in ranks.details.items():
                _mark_certified(found_blocks[b][name], det)
        return ({k: found[k] for k in MATRICES}, dict(mf.timings), mf.details,
                _block_spectra(blocks, found_blocks))
    gram = plan.h_o == H_O_GRAM
    t = time.perf_counter()
    mats = source.hessians(("H_L", "H_F") if gram else MATRICES)
    A = source.factor() if gram else None
    timings = {"hessians": time.perf_counter() - t}
    t = time.perf_counter()
    # blocks first: the whole matrix is overwritten by its eigensolver
    block_known = {b: {m: factor_block_known(A, blk) if m == "H_o" and gram else dense_block_known(mats[m], blk)
                       for m in MATRICES} for b, blk in blocks.items()}
    infos: dict[str, RankInfo] = {}
    knowns = {}
    for name in MATRICES:
        if name == "H_o" and gram:   # H_o = AᵀA: the non-zero eigenvalues of the smaller A Aᵀ
            knowns[name] = known_from_factor(A)
        else:
            knowns[name] = known_from_dense(mats.pop(name), vectors=options.eigenvectors)
        infos[name] = rank_from_eigenvalues(knowns[name].values, p, rtol=rtol, atol=atol)
    infos = at_problem_scale(infos, rtol=rtol, atol=atol)
    for name in MATRICES:
        found[name] = summarize(name, knowns.pop(name), infos[name], None, options)
    for b, blk in blocks.items():
        for m in MATRICES:
            known = block_known[b][m]
            found_blocks[b][m] = summarize(m, known, at_whole_tolerance(known.values, blk.size, infos[m]),
                                           None, per_block)
    timings["spectra"] = time.perf_counter() - t
    return {k: found[k] for k in MATRICES}, timings, {}, _block_spectra(blocks, found_blocks)


def _mark_certified(spec: MatrixSpectrum, details: dict) -> None:
    spec.certified = details.get("certified", True) is not False
    if not spec.certified:
        spec.condition = None


def _block_spectra(blocks, found) -> dict[str, BlockSpectrum]:
    return {b: BlockSpectrum(blk.size, blk.leaves, {m: found[b][m] for m in MATRICES}) for b, blk in blocks.items()}


@dataclass(repr=False)
class SpectrumResult(RankedResult):
    """The spectra of H_L, H_o, H_F of one network on its data: what :func:`spectrum` and
    :func:`hessian_spectrum` return.

    Attributes:
        matrices: per matrix (``H_L``, ``H_o``, ``H_F``) its :class:`MatrixSpectrum`: rank,
            tolerance, gap, top eigenvalues (and eigenvectors when asked), trace, density,
            outliers, condition.
        blocks: per diagonal block a :class:`BlockSpectrum` (ranks at the whole matrix's tolerance).
        config: the :class:`~hessrank.RunConfig` measured (``None`` for :func:`hessian_spectrum`).
        p, n, d, K, loss: parameters, samples, input size, outputs and the loss.
        method, method_reason, method_details: dense or matrix-free, why, and per matrix how a
            matrix-free rank was certified.
        model: describes a network other than the built-in MLP (empty for the MLP).

    ``summary()`` is the table ``hessian-rank spectrum`` prints; ``to_dict()`` its ``--json``.
    """

    config: RunConfig | None
    p: int
    n: int
    d: int
    matrices: dict[str, MatrixSpectrum]
    method: str
    method_reason: str
    seconds: float
    timings: dict = field(default_factory=dict)
    method_details: dict = field(default_factory=dict)
    options: SpectrumOptions = field(default_factory=SpectrumOptions)
    peak_rss_bytes: int = 0
    provenance: dict = field(default_factory=dict)
    blocks: dict[str, BlockSpectrum] = field(default_factory=dict)
    K: int | None = None
    loss: str | None = None
    model: str = ""
    #: a PyTorch module's mode when measured, ``train`` or ``eval`` (empty for a JAX model)
    mode: str = ""
    #: a PyTorch module: its parameters with ``requires_grad=False``, held fixed (not in θ)
    frozen: tuple[str, ...] = ()

    def rank_infos(self) -> dict[str, RankInfo]:
        """Each matrix's rank, tolerance and gap as a :class:`~hessrank.RankInfo` (its
        ``eigenvalues``: the ``top`` ones found)."""
        return {k: RankInfo(rank=m.rank, tol=m.tol, gap_decades=m.gap_decades, eigenvalues=m.top, size=m.size)
                for k, m in self.matrices.items()}

    @property
    def ranks(self) -> dict[str, RankInfo]:
        """:meth:`rank_infos`, as :attr:`hessrank.Result.ranks` has them."""
        return self.rank_infos()

    def summary(self) -> str:
        """The table ``hessian-rank spectrum`` prints: per matrix its rank, λ_max, trace (± its
        standard error), outliers, condition, the top eigenvalues and how each was found (then
        the diagonal blocks' table, with blocks)."""
        return spectrum_summary(self)

    def to_dict(self) -> dict:
        """``{"H_L": {...}, "H_o": {...}, "H_F": {...}, "p": …, "config": …, …}`` (and ``"blocks"``
        with ``blocks``, ``"model"`` for a network other than the built-in MLP): what
        ``hessian-rank spectrum --json`` prints."""
        out = {name: m.to_dict() for name, m in self.matrices.items()}
        c = self.config
        out.update({"p": self.p, "n": self.n, "d": self.d, "K": c.K if c is not None else self.K,
                    "loss": c.loss if c is not None else self.loss, "config": None if c is None else c.to_dict(),
                    "method": self.method, "method_reason": self.method_reason, "seconds": self.seconds,
                    "timings": self.timings, "method_details": self.method_details,
                    "options": dict(self.options.__dict__), "peak_rss_bytes": self.peak_rss_bytes,
                    "provenance": self.provenance})
        if self.model:
            out["model"] = self.model
        out.update(torch_fields(self))
        return {**out, **self._blocks_dict()}


def _options(top, trace, density, eigenvectors, settings) -> SpectrumOptions:
    unknown = sorted(set(settings) - {f.name for f in dataclasses.fields(SpectrumOptions)})
    if unknown:
        raise ConfigError.invalid(unknown[0], settings[unknown[0]], "not a setting of a spectrum (the settings: "
                                  f"{', '.join(f.name for f in dataclasses.fields(SpectrumOptions))})")
    return SpectrumOptions(top=top, trace=trace, density=density, eigenvectors=eigenvectors, **settings).validate()


@in_float64
def spectrum(config: RunConfig, *, top: int = 20, trace: bool = True, density: bool = True,
             eigenvectors: bool = False, method: str | None = None, blocks=None,
             threads: int | None = None, devices=None, **settings) -> SpectrumResult:
    """Top eigenvalues, trace, density, outliers and condition number of H_L, H_o, H_F for the
    network and data of ``config``: the engine of ``hessian-rank spectrum``.

    Every network a :class:`~hessrank.RunConfig` describes: the built-in MLP, the CNN
    (``arch="cnn"``) and a user's ``model="FILE.py:FUNCTION"``, at its initialisation.

    Args:
        config: what to measure (data, network, loss, tolerance, seed; ``config.method``).
        top: how many eigenvalues of largest magnitude per matrix (dense: exact; matrix-free:
            Ritz values of the certified sketch, each within ``top_bound`` of an eigenvalue).
        trace: also the trace (exact when dense; otherwise an estimate with its standard error).
        density: also the eigenvalue density (smoothed exact spectrum, or stochastic Lanczos quadrature).
        eigenvectors: also the eigenvectors of the ``top`` eigenvalues (``matrices[m].vectors``).
        method: overrides ``config.method`` (``auto``, ``dense``, ``matrix-free``).
        blocks: ``"leaves"``, ``"layers"`` or a mapping name → leaf names: also the diagonal blocks.
        threads: BLAS threads for the eigenvalues and the sketch (default: the cores this process may use).
        devices: the JAX devices a matrix-free run's Hessian-vector products split the samples over (default:
            every device, or none on one process of CPUs; a number: the first N); the bases stay in host memory.
        settings: the other fields of :class:`SpectrumOptions` (``trace_samples``, ``probes``,
            ``lanczos_steps``, ``density_points``, ``seed``).

    Returns:
        a :class:`SpectrumResult`.

    Raises:
        ConfigError: a bad setting or configuration (one line naming it); a user's model that
            fails or gives outputs that are not finite (n, K) arrays is named as ``model``.
        DataError: a data set that cannot be read.
    """
    t0 = time.perf_counter()
    options = _options(top, trace, density, eigenvectors, settings)
    if method is not None:
        config = config.replace(method=method)
    data, model, theta = build(config)
    resolved = resolve_blocks(model, blocks)
    p = model.num_params
    if devices not in (None, "auto"):
        device_mesh(devices)   # a bad number is refused whichever method runs
    plan = plan_spectrum(config.method, p, data.n, data.K, options, threads=threads)
    source = curvature_source(model, get_loss(config.loss), theta, data.X, data.Y,
                              batch_size=config.effective_batch_size(data.n))
    with blas_threads(plan.threads) if threads is not None else contextlib.nullcontext():
        spectra, timings, details, block_spectra = measure_source_spectra(
            plan, source, options, rtol=config.rtol, atol=config.atol, seed=config.seed, blocks=resolved,
            devices=devices)
    config = config.replace(n=data.n, dim=data.d)
    return SpectrumResult(config=config, p=p, n=data.n, d=data.d, matrices=spectra,
                          method=plan.method, method_reason=plan.reason, seconds=time.perf_counter() - t0,
                          timings=timings, method_details=details, options=options, peak_rss_bytes=peak_rss_bytes(),
                          provenance=provenance(), blocks=block_spectra, K=data.K, loss=config.loss,
                          model=_model_label(config, data.d), mode=getattr(source, "mode", ""),
                          frozen=getattr(source, "frozen", ()))


def _model_label(config: RunConfig, d: int) -> str:
    """How a spectrum names a network other than the built-in MLP (empty for the MLP)."""
    if config.network == "mlp":
        return ""
    if config.network == "model":
        return f"{config.model} (d = {d}, K = {config.K}, seed {config.seed})"
    return f"{network_label(config, d)}, seed {config.seed}"


def hessian_spectrum_mlp(config: RunConfig, **kwargs) -> SpectrumResult:
    """The former name of :func:`spectrum` (kept for existing scripts)."""
    return spectrum(config, **kwargs)


def measure_model_spectrum(model, theta, X, Y, *, loss: str = "mse", method: str = "auto", blocks=None,
                           rtol: float | None = None, atol: float | None = None, batch_size: int | None = None,
                           seed: int = 0, options: SpectrumOptions | None = None,
                           config: RunConfig | None = None, label: str = "",
                           num_classes: int | None = None) -> SpectrumResult:
    """:func:`hessian_spectrum` for a :class:`~hessrank.models.Model` and its flat parameters
    ``theta``; ``config`` and ``label`` are recorded in the result (the command line's)."""
    t0 = time.perf_counter()
    options = (options or SpectrumOptions()).validate()
    with float64_scope():
        lossf, theta, X, Y, batch_size = prepare_inputs(model, theta, X, Y, loss=loss, method=method, rtol=rtol,
                                                        atol=atol, batch_size=batch_size, num_classes=num_classes)
        source = jax_source(model, lossf, theta, X, Y, batch_size=batch_size)
        return _source_spectrum(source, model, t0, X.shape, loss=loss, method=method, blocks=blocks, rtol=rtol,
                                atol=atol, seed=seed, options=options, config=config, label=label)


def _source_spectrum(source, layout, t0, shape, *, loss, method, blocks, rtol, atol, seed, options, config,
                     label) -> SpectrumResult:
    """The :class:`SpectrumResult` of either front end's source (``layout`` names the parameters;
    ``shape`` is the inputs')."""
    p, n, K = source.p, source.n, source.K
    resolved = resolve_blocks(layout, blocks)
    plan = plan_spectrum(method, p, n, K, options)
    spectra, timings, details, block_spectra = measure_source_spectra(plan, source, options, rtol=rtol, atol=atol,
                                                                      seed=seed, blocks=resolved)
    d = int(np.prod(shape[1:], dtype=np.int64))
    return SpectrumResult(config=config, p=p, n=n, d=d, matrices=spectra, method=plan.method,
                          method_reason=plan.reason, seconds=time.perf_counter() - t0, timings=timings,
                          method_details=details, options=options, peak_rss_bytes=peak_rss_bytes(),
                          provenance=provenance(), blocks=block_spectra, K=K, loss=loss, model=label,
                          mode=getattr(source, "mode", ""), frozen=getattr(source, "frozen", ()))


def function_spectrum(f: Callable, params, X, Y, *, loss: str = "mse", method: str = "auto", blocks=None,
                      rtol: float | None = None, atol: float | None = None, batch_size: int | None = None,
                      seed: int = 0, options: SpectrumOptions | None = None, config: RunConfig | None = None,
                      label: str = "", num_classes: int | None = None) -> SpectrumResult:
    """:func:`measure_model_spectrum` of ``f(params, X)`` over a pytree ``params``, or of a PyTorch
    module (``f`` a module or a ``(module, params)`` pair): the :class:`SpectrumResult` behind
    :func:`hessian_spectrum`."""
    settings = dict(loss=loss, method=method, rtol=rtol, atol=atol)
    if not is_torch_input(f, params):
        with float64_scope():
            model, theta = function_model(f, params)
            return measure_model_spectrum(model, theta, X, Y, **settings, blocks=blocks, batch_size=batch_size,
                                          seed=seed, options=options, config=config, label=label,
                                          num_classes=num_classes)
    t0 = time.perf_counter()
    options = (options or SpectrumOptions()).validate()
    with float64_scope():
        source = model_source(f, params, X, Y, **settings, batch_size=batch_size, num_classes=num_classes)
        label = label or f"torch module {type(source.net).__name__}"
        return _source_spectrum(source, source, t0, np.shape(X), **settings, blocks=blocks, seed=seed,
                                options=options, config=config, label=label)


def hessian_spectrum(f: Callable, params, X, Y, *, loss: str = "mse", top: int = 20, trace: bool = True,
                     density: bool = True, eigenvectors: bool = False, method: str = "auto", blocks=None,
                     rtol: float | None = None, atol: float | None = None, batch_size: int | None = None,
                     seed: int = 0, num_classes: int | None = None, **settings) -> SpectrumResult:
    """Top eigenvalues, trace, density, outliers and condition number of H_L, H_o, H_F of the
    model ``f`` at ``params`` on the data ``X, Y`` — and of their diagonal blocks with ``blocks``.

    Args:
        f, params, X, Y, loss, method, blocks, rtol, atol, batch_size, num_classes: as for
            :func:`~hessrank.hessian_ranks` (any pytree of float32/float64 arrays; integer class
            labels or targets (n, K); a scoped float64).
        top: how many eigenvalues of largest magnitude per matrix (dense: exact; matrix-free:
            Ritz values of the certified sketch, each within ``top_bound`` of an eigenvalue).
        trace: the trace (exact when dense or from the Gram matrix; otherwise an estimate with
            ``trace_stderr`` and ``trace_products``).
        density: the eigenvalue density (smoothed exact spectrum, or stochastic Lanczos quadrature).
        eigenvectors: also the eigenvectors of the ``top`` eigenvalues (``matrices[m].vectors``,
            top × p, rows).
        seed: seeds every random probe (the sketches', the trace's, the Lanczos starts).
        settings: the other fields of :class:`SpectrumOptions` (``trace_samples``, ``probes``,
            ``lanczos_steps``, ``density_points``).

    Returns:
        a :class:`SpectrumResult` (the class :func:`spectrum` returns): ``matrices[m]`` per matrix
        with ``top``, ``top_bound``, ``trace``, ``density``, ``outliers``, ``condition``, ``rank``,
        ``tol``, …; with ``blocks``, ``blocks[name]`` per diagonal block (ranks at the whole
        matrix's tolerance). ``to_dict()`` is the dict ``hessian-rank spectrum --json`` prints.

    Raises:
        ConfigError: a bad argument, parameter leaf, label or model output, named in one line.
    """
    options = _options(top, trace, density, eigenvectors, {**settings, "seed": seed})
    return function_spectrum(f, params, X, Y, loss=loss, method=method, blocks=blocks, rtol=rtol, atol=atol,
                             batch_size=batch_size, seed=seed, options=options, num_classes=num_classes)
