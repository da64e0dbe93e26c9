"""The one measurement of a front end's curvature: ranks of H_L, H_o, H_F (and of diagonal
blocks) by the plan's method, dense (:func:`_dense_ranks`) or matrix-free
(:func:`~hessrank.measure.matrixfree.matrix_free_source_ranks`).

It sees only a :class:`~hessrank.curvature.CurvatureSource` and imports no JAX: a PyTorch
module's ranks on the host never load it (JAX's float64 scope is entered where the source
computes with JAX).
"""

from __future__ import annotations

import time

from ..curvature.interface import CurvatureSource
from ..curvature.source import float64_scope_for
from ..linalg import rank_from_eigenvalues, spectrum, symmetric_rank
from ..matrices import DENSE, H_O_GRAM, MATRICES
from .blocks import Block, BlockRanks, at_whole_tolerance, dense_block_spectrum, factor_block_spectrum
from .matrixfree import HOST, matrix_free_source_ranks
from .plan import MethodPlan
from .scale import at_problem_scale
from .threads import blas_threads, resolve_threads


def measure_source_ranks(plan: MethodPlan, source: CurvatureSource, *, rtol: float | None = None,
                         atol: float | None = None, seed: int = 0, blocks: dict[str, Block] | None = None):
    """:func:`~hessrank.measure.run.measure_model_ranks` of any front end's
    :class:`~hessrank.curvature.CurvatureSource`: the plan's method, on the plan's devices (host
    memory when it has none)."""
    blocks = blocks or {}
    if plan.method != DENSE:
        mf = matrix_free_source_ranks(source, rtol=rtol, atol=atol, memory_bytes=plan.budget, seed=seed,
                                      blocks=blocks, threads=plan.threads, devices=plan.devices or HOST)
        return mf.ranks, dict(mf.timings), mf.details, mf.blocks
    with blas_threads(resolve_threads(plan.threads)):
        return _dense_ranks(plan, source, rtol=rtol, atol=atol, blocks=blocks)


def _dense_ranks(plan: MethodPlan, source: CurvatureSource, *, rtol, atol, blocks):
    """The dense branch of :func:`measure_source_ranks`."""
    p = source.p
    gram = plan.h_o == H_O_GRAM  # H_o = AᵀA has the non-zero eigenvalues of the smaller A Aᵀ
    t = time.perf_counter()
    with float64_scope_for(source):
        if gram:  # A once: it gives H_o's Gram matrix and H_L = H_F + AᵀA
            mats = source.hessians(("H_F",))
            A = source.factor()
            mats["H_L"] = A.T @ A
            mats["H_L"] += mats["H_F"]
            gram_matrix = A @ A.T
            if not blocks:
                del A
        else:
            mats = source.hessians(MATRICES)
    timings = {"hessians": time.perf_counter() - t}
    t = time.perf_counter()
    # block spectra first: ranking the whole matrix overwrites it; counted later at the whole tolerance
    block_spectra = {name: {m: (factor_block_spectrum(A, blk) if m == "H_o" and gram
                                else dense_block_spectrum(mats[m], blk)) for m in MATRICES}
                     for name, blk in blocks.items()}
    ranks = {}
    for name in MATRICES:
        if name == "H_o" and gram:
            ranks[name] = rank_from_eigenvalues(spectrum(gram_matrix, overwrite=True), p, rtol=rtol, atol=atol)
        else:
            ranks[name] = symmetric_rank(mats.pop(name), rtol=rtol, atol=atol, overwrite=True)
    ranks = at_problem_scale(ranks, rtol=rtol, atol=atol)
    timings["eigen"] = time.perf_counter() - t
    how = {"H_L": "eigenvalues of the diagonal block", "H_F": "eigenvalues of the diagonal block",
           "H_o": "eigenvalues of A_bᵀA_b (the block's columns of A)" if gram
           else "eigenvalues of the diagonal block"}
    block_ranks = {
        name: BlockRanks(blk.size, blk.leaves,
                         {m: at_whole_tolerance(block_spectra[name][m], blk.size, ranks[m]) for m in MATRICES},
                         {m: {"how": how[m], "status": "exact"} for m in MATRICES})
        for name, blk in blocks.items()}
    return ranks, timings, {}, block_ranks
