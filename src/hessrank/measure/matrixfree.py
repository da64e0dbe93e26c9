r"""Ranks of H_L, H_o, H_F without p×p matrices.

* ``H_o`` through its factor :math:`A = \Lambda^{1/2} J` (nK×p): the non-zero
  eigenvalues of :math:`H_o = A^\top A` are those of the Gram matrix :math:`A A^\top`
  (nK×nK), used when nK ≤ p. When nK > p the p×p :math:`A^\top A` is formed if it fits,
  otherwise :math:`H_o` is sketched like the others.
* ``H_F``: the certified randomized sketch of :mod:`hessrank.linalg.sketch` on
  Hessian-vector products (:mod:`hessrank.curvature.operators`).
* ``H_L = H_o + H_F``, so :math:`\mathrm{range}(H_L) \subseteq \mathrm{range}(H_F) +
  \mathrm{range}(A^\top)`: the sketch of ``H_L`` starts from the basis :math:`Q` of
  ``H_F`` plus the eigenvectors :math:`v_j = A^\top u_j / \sqrt{\mu_j}` of ``H_o`` (from
  the Gram matrix, :math:`A A^\top u_j = \mu_j u_j`), with
  :math:`Q H_L Q^\top = Q H_F Q^\top + (Q V^\top)\,\mathrm{diag}(\mu)\,(V Q^\top)`
  (no new products on the part already known; the :math:`\mu_j` left out sum to a
  matrix of norm at most :math:`10^{-3}` times the cut of ``H_o``, at the level of
  rounding), and is then certified with fresh
  ``H_L`` probes like any other — products ``H_L v = H_F v + A^\top (A v)`` when
  ``A`` is still needed (per-block ranks, an observer), Hessian-vector products of the
  loss otherwise (``A``, nK×p, is then freed before ``H_L``'s memory peak when it is large).

Every rank uses the dense tolerance rule with the full size p
(:func:`hessrank.linalg.rank_from_eigenvalues`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import scipy.linalg

from ..curvature.interface import CurvatureOperator, CurvatureSource
from ..curvature.source import float64_scope_for, jax_source
from ..errors import ConfigError
from ..linalg import RankInfo, Subspace, rank_from_eigenvalues, sketch_rank, symmetric_rank
from ..matrices import H_O_GRAM, H_O_PATHS, H_O_SQUARE, MATRICES
from .blocks import (
    Block,
    BlockRanks,
    at_whole_tolerance,
    dense_block_known,
    dense_block_spectrum,
    factor_block_known,
    factor_block_spectrum,
    restrict,
)
from .plan import SKETCH_BLOCK, MemoryPlan, plan_memory, plan_mesh_memory
from .scale import largest, problem_cut, terms_scale
from .threads import blas_threads, resolve_threads

if TYPE_CHECKING:
    from ..models import MLP, Loss

#: a factor A of this many bytes or more is freed once range(H_o) is taken from it (H_L's last
#: probes then use the compiled H_L product): at p = 110,100 it is 0.26 GB of H_L's peak; a
#: smaller one is kept, which spares compiling a third product (0.1–0.2 s at p = 4560)
_FREE_FACTOR_FROM = 2**26
#: default sketch settings: probes per growing round, and per certifying round
BLOCK = SKETCH_BLOCK
PROBES = 32
#: ``devices`` of a run whose bases stay in host memory (NumPy), without asking JAX for its devices
HOST = 0
#: rows of range(H_o) added to H_F's basis at a time when H_L's sketch starts (memory: temporaries of this × p)
_SPAN_ROWS = 64


@dataclass
class MatrixFreeResult:
    """Ranks of the three matrices and, per matrix, how each was obtained."""

    ranks: dict[str, RankInfo]
    details: dict[str, dict]
    timings: dict[str, float] = field(default_factory=dict)
    blocks: dict[str, BlockRanks] = field(default_factory=dict)
    #: the BLAS threads the orthogonalisation and eigenvalues ran on
    threads: int = 1
    #: the devices the bases were sharded over (0: host memory, NumPy)
    devices: int = 0
    #: this process's devices its samples were split over for the products (0: one device)
    product_devices: int = 0


def matrix_free_ranks(model: MLP, loss: Loss, theta, X, Y, *, batch_size: int | None = None,
                      rtol: float | None = None, atol: float | None = None,
                      memory_bytes: float | None = None, block: int | None = None, probes: int = PROBES,
                      seed: int = 0, h_o_path: str | None = None,
                      threads: int | None = None, blocks: dict[str, Block] | None = None,
                      observe=None, observe_block=None, devices=None) -> MatrixFreeResult:
    """Numerical ranks of ``H_L``, ``H_o``, ``H_F`` with O(p·k) memory (see module docstring).

    ``memory_bytes`` bounds the arrays this function holds (the basis, the factor A);
    ``block``: probes per growing round (None: :func:`plan_memory` chooses, :data:`BLOCK`
    unless memory is short); ``seed`` seeds the Gaussian probes; ``h_o_path`` (``gram``, ``square``, ``sketch``)
    overrides the choice of :func:`plan_memory` for ``H_o``; ``threads``: NumPy/SciPy's BLAS
    threads meanwhile (None: the cores this process may use,
    :func:`~hessrank.measure.threads.usable_cores`). The Hessian-vector products run in XLA
    with their own threads either way.
    ``blocks`` (from :func:`hessrank.measure.blocks.resolve_blocks`): also rank each
    diagonal block, at the whole matrix's tolerance, on products restricted to the block.
    ``observe(name, info, known, operator)``, when given, is called as soon as each
    matrix's rank is known, while its basis is still intact (``H_F``'s becomes the start of
    ``H_L``'s): ``known(vectors)`` returns its :class:`~hessrank.linalg.spectral.KnownSpectrum`,
    ``operator`` its products (None when its spectrum is exact); :mod:`hessrank.measure.spectrum` uses it.
    ``observe_block(block, name, info, known, operator)`` is the same for each diagonal block (``known``
    a :class:`~hessrank.linalg.spectral.KnownSpectrum` without eigenvectors, ``operator`` the restricted one).
    ``devices``: where the sketches' bases live (:func:`~hessrank.linalg._mesh.choose_devices`): None or
    ``auto`` — every device JAX sees, or the host's memory on one process of CPUs only; :data:`HOST` —
    the host's memory (no JAX import where the source computes without JAX); a number N — the
    first N devices, each holding its share of the p columns of every basis row. ``memory_bytes`` is then
    what the host may use; each device plans its share (:func:`~hessrank.measure.plan.plan_mesh_memory`).
    The products split this process's samples over its devices of those (:mod:`~hessrank.curvature.operators`;
    a front end without :meth:`~hessrank.curvature.JaxSource.on_devices`, e.g. PyTorch's, keeps them on the host).
    Observers need the basis on the host: with them the basis stays there and only the products use the devices
    (on several processes each product is added over the processes' shares of the samples).
    """
    return matrix_free_source_ranks(jax_source(model, loss, theta, X, Y, batch_size=batch_size), rtol=rtol,
                                    atol=atol, memory_bytes=memory_bytes, block=block, probes=probes, seed=seed,
                                    h_o_path=h_o_path, threads=threads, blocks=blocks, observe=observe,
                                    observe_block=observe_block, devices=devices)


def matrix_free_source_ranks(source: CurvatureSource, *, rtol: float | None = None, atol: float | None = None,
                             memory_bytes: float | None = None, block: int | None = None, probes: int = PROBES,
                             seed: int = 0, h_o_path: str | None = None, threads: int | None = None,
                             blocks: dict[str, Block] | None = None, observe=None,
                             observe_block=None, devices=None) -> MatrixFreeResult:
    """:func:`matrix_free_ranks` of any front end's :class:`~hessrank.curvature.CurvatureSource`."""
    threads = resolve_threads(threads)
    mesh = _mesh_of(devices)
    local = _local_devices(mesh)
    if len(local) > 1 and hasattr(source, "on_devices"):   # this process's devices split its samples
        source = source.on_devices(local)
    else:
        local = ()
    if observe or observe_block:   # spectra read the basis in host memory
        mesh = None
    with blas_threads(threads), float64_scope_for(source, jax_used=mesh is not None or bool(observe or observe_block)):
        result = _matrix_free_ranks(source, rtol=rtol, atol=atol, memory_bytes=memory_bytes, block=block,
                                    probes=probes, seed=seed, h_o_path=h_o_path, blocks=blocks or {},
                                    observe=observe, observe_block=observe_block, mesh=mesh)
    result.threads = threads
    result.devices = 0 if mesh is None else int(mesh.devices.size)
    result.product_devices = len(local)
    return result


def _mesh_of(devices):
    """The mesh ``devices`` chooses (:func:`~hessrank.linalg._mesh.choose_devices`); none for :data:`HOST`."""
    if type(devices) is int and devices == HOST:
        return None
    from ..linalg._mesh import choose_devices

    return choose_devices(devices)


def _local_devices(mesh) -> tuple:
    """This process's devices of ``mesh`` (none without a mesh)."""
    if mesh is None:
        return ()
    import jax

    return tuple(d for d in mesh.devices.flat if d.process_index == jax.process_index())


def _matrix_free_ranks(source, *, rtol, atol, memory_bytes, block, probes, seed, h_o_path, blocks, observe,
                       observe_block=None, mesh=None) -> MatrixFreeResult:
    p, n, K = source.p, source.n, source.K
    if observe or observe_block:   # the spectra of what is measured (JAX's Lanczos quadrature beside)
        from ..linalg.spectral import known_from_dense, known_from_factor, known_from_subspace
    if mesh is None:
        plan = plan_memory(p, n, K, memory_bytes, block=block)
    else:
        from ..linalg._mesh import per_device_bytes

        plan = plan_mesh_memory(p, n, K, memory_bytes, devices=int(mesh.devices.size), block=block,
                                device_bytes=None if memory_bytes is None else per_device_bytes(mesh, memory_bytes))
    if h_o_path is not None:
        if h_o_path not in H_O_PATHS:
            raise ValueError(f"h_o_path {h_o_path!r}: not one of gram, square, sketch")
        plan = MemoryPlan(h_o_path, plan.capacity, plan.fixed_bytes, plan.block)
    block = plan.block
    # on several processes each takes the products over its own share of the samples, summed over
    # the processes (H_F, H_L and H_o are sums over samples); H_o's factor A stays whole
    if mesh is None and not hasattr(source, "samples"):   # a basis in host memory: every process every sample
        share, summed, first = None, (lambda op: op), True
    else:
        share, summed, first = _sample_share(mesh, n)
    mine = source
    if share is not None:
        if not hasattr(source, "samples"):
            raise ConfigError.invalid("num_processes", "several", "this front end takes products over every "
                                      "sample on one process; run it as one process", quoted=False)
        mine = source.samples(share)
    H_F_op = summed(mine.operator("H_F"))
    H_L_op = summed(mine.operator("H_L"))
    sketch = dict(rtol=rtol, atol=atol, block=block, probes=probes, devices=mesh)
    ranks, details, timings = {}, {}, {}

    t = time.perf_counter()
    A = H_o = H_o_op = None
    if plan.h_o == H_O_GRAM:
        A = source.factor()
        mu, U = scipy.linalg.eigh(A @ A.T, driver="evd", overwrite_a=True, check_finite=False)
        ranks["H_o"] = rank_from_eigenvalues(mu, p, rtol=rtol, atol=atol)
        details["H_o"] = {"how": f"eigenvalues of the {n * K}×{n * K} Gram matrix Λ^½J Jᵀ Λ^½",
                          "columns": n * K, "status": "exact"}
        if observe:
            observe("H_o", ranks["H_o"], lambda vectors: known_from_factor(A, mu=mu, U=U), None)
    elif plan.h_o == H_O_SQUARE:
        H_o = source.hessians(("H_o",))["H_o"]
        ranks["H_o"] = symmetric_rank(H_o, rtol=rtol, atol=atol)
        details["H_o"] = {"how": f"eigenvalues of the {p}×{p} AᵀA (nK = {n * K} > p)", "columns": p,
                          "status": "exact"}
        if observe:
            observe("H_o", ranks["H_o"], lambda vectors: known_from_dense(H_o, vectors=vectors), None)
    else:
        H_o_op = summed(mine.operator("H_o"))
        res = sketch_rank(H_o_op, seed=seed, max_columns=plan.capacity, **sketch)
        ranks["H_o"], details["H_o"] = res.info, _sketch_details(res)
        if observe:
            _observe_sketch(observe, "H_o", res, H_o_op)
        del res
    timings["H_o"] = time.perf_counter() - t

    t = time.perf_counter()
    res = sketch_rank(H_F_op, seed=seed + 1, max_columns=plan.capacity,
                      **_at_scale(sketch, "H_F", ranks, p, rtol=rtol, atol=atol))
    ranks["H_F"], details["H_F"] = _with_scale(res.info, ranks), _sketch_details(res)
    if observe:
        _observe_sketch(observe, "H_F", res, H_F_op)
    timings["H_F"] = time.perf_counter() - t

    # H_L = H_o + H_F: start from H_F's basis (T = Q H_F Qᵀ), add range(Aᵀ), add Q H_o Qᵀ
    t = time.perf_counter()
    space: Subspace = res.subspace
    del res
    start = f"H_F's {space.k}"
    if A is not None:
        # eigenvectors of H_o: v_j = Aᵀu_j / √μ_j, and Σ_j μ_j v_j v_jᵀ = Aᵀ U Uᵀ A over the kept
        # j; the rest of H_o has norm ≤ 1e-3·tol(H_o), far below any cut
        keep = mu > 1e-3 * ranks["H_o"].tol
        Vo = (U[:, keep] / np.sqrt(mu[keep])).T @ A
        if not (observe or blocks) and A.nbytes >= _FREE_FACTOR_FROM:
            A = None   # not needed again (H_L's last probes use the compiled product): freed before the peak
        k_F = space.k
        C_F = space.coefficients(Vo)                        # first projection, and Q_F H_o's factor
        added = 0                                           # directions of range(H_o) beyond Q_F, in
        for lo in range(0, Vo.shape[0], _SPAN_ROWS):        # slices: their temporaries are b×p, not nK×p
            V = Vo[lo:lo + _SPAN_ROWS]
            C = np.hstack([C_F[lo:lo + _SPAN_ROWS], space.coefficients(V, start=k_F)])
            added += space.add_span(V, H_F_op, C=C)
        G = np.vstack([C_F.T, space.coefficients_t(Vo, start=k_F)])   # Q Voᵀ: Q H_o Qᵀ = G diag(μ) Gᵀ
        space.add_to_matrix((G * mu[keep]) @ G.T)
        Vo = C_F = G = V = C = None                         # nK×p: not needed at H_L's peak (V: a view of Vo)
        start += f" + {added} from range(H_o), with {added} products of H_F"
        if A is not None:  # still needed (blocks, an observer): H_L v = H_F v + Aᵀ(A v), no third compiled product
            share_F = getattr(H_F_op, "operator", H_F_op)   # this process's share, summed by H_L's wrapper

            def h_l_into(V, out):
                if not first:   # AᵀA is whole: one process adds it to the processes' sum
                    return share_F.into(V, out)
                return np.add(share_F.into(V, out), (V @ A.T) @ A, out=out)

            H_L_op = summed(CurvatureOperator("H_L", p, lambda V: h_l_into(V, np.empty(np.shape(V))), h_l_into))
    elif H_o is not None:
        space.add_to_matrix(space.projected_dense(H_o))
    elif space.k:
        space.add_to_matrix(space.projected(H_o_op))
    res = sketch_rank(H_L_op, seed=seed + 2, start=space, **_at_scale(sketch, "H_L", ranks, p, rtol=rtol, atol=atol))
    ranks["H_L"], details["H_L"] = _with_scale(res.info, ranks), {**_sketch_details(res), "start": start}
    if observe:
        _observe_sketch(observe, "H_L", res, H_L_op)
    timings["H_L"] = time.perf_counter() - t
    del res, space

    t = time.perf_counter()
    ops = {"H_L": H_L_op, "H_F": H_F_op, "H_o": H_o_op}
    block_ranks = {}
    for i, (name, blk) in enumerate(blocks.items()):
        b_ranks, b_details = {}, {}
        for j, m in enumerate(MATRICES):
            known = op = None
            if m == "H_o" and A is not None:
                known = factor_block_known(A, blk) if observe_block else None
                values = known.values if known else factor_block_spectrum(A, blk)
                b_ranks[m] = at_whole_tolerance(values, blk.size, ranks[m])
                b_details[m] = {"how": "eigenvalues of A_bᵀA_b (the block's columns of A)", "status": "exact"}
            elif m == "H_o" and H_o is not None:
                known = dense_block_known(H_o, blk) if observe_block else None
                values = known.values if known else dense_block_spectrum(H_o, blk)
                b_ranks[m] = at_whole_tolerance(values, blk.size, ranks[m])
                b_details[m] = {"how": "eigenvalues of the block of AᵀA", "status": "exact"}
            else:
                op = summed(restrict(ops[m], blk)) if getattr(ops[m], "summed", False) else restrict(ops[m], blk)
                res = sketch_rank(op, seed=seed + 3 + 3 * i + j, max_columns=plan.capacity, rtol=None,
                                  atol=ranks[m].tol, block=min(block, blk.size), probes=probes, devices=mesh)
                b_ranks[m], b_details[m] = res.info, _sketch_details(res)
                if observe_block:
                    known = known_from_subspace(res.subspace, res.certificate.residual_bound,
                                                values=res.info.eigenvalues)
                del res
            if observe_block:
                observe_block(name, m, b_ranks[m], known, op)
        block_ranks[name] = BlockRanks(blk.size, blk.leaves, b_ranks, b_details)
    if blocks:
        timings["blocks"] = time.perf_counter() - t
    return MatrixFreeResult(ranks={k: ranks[k] for k in MATRICES}, details={k: details[k] for k in MATRICES},
                            timings=timings, blocks=block_ranks)


def _sample_share(mesh, n: int):
    """``(samples, summed, first)``: the samples this process takes the products over, the wrapper that
    makes an operator's products this process's share of a sum over the processes, and whether this is
    the first process. A mesh over every process: its :class:`~hessrank.linalg._mesh.MeshSubspace` adds
    the shares (:class:`~hessrank.linalg._mesh.ProcessShare`); a basis in host memory (spectra): each
    product is added over the processes (:class:`~hessrank.linalg._mesh.ProcessSum`). One process, or a
    mesh on some of the processes only: ``None`` (every sample), no wrapper."""
    import jax

    count = jax.process_count()
    if count == 1 or n < count or (mesh is not None and len({d.process_index for d in mesh.devices.flat}) < count):
        return None, (lambda op: op), True
    from ..linalg._mesh import ProcessShare, ProcessSum

    i = jax.process_index()
    return slice(i * n // count, (i + 1) * n // count), ProcessShare if mesh is not None else ProcessSum, i == 0


def _observe_sketch(observe, name, res, operator) -> None:
    from ..linalg.spectral import known_from_subspace

    delta = res.certificate.residual_bound
    observe(name, res.info, lambda vectors: known_from_subspace(res.subspace, delta, values=res.info.eigenvalues,
                                                                vectors=vectors), operator)


def _at_scale(sketch: dict, name: str, ranks: dict, p: int, *, rtol, atol) -> dict:
    """``sketch``'s settings with the cut of ``name`` at the problem's scale (:mod:`.scale`)."""
    rtol, atol = problem_cut(name, ranks, p, rtol=rtol, atol=atol)
    return {**sketch, "rtol": rtol, "atol": atol}


def _with_scale(info: RankInfo, ranks: dict) -> RankInfo:
    """``info`` recording the terms' scale its cut was taken against (when above its own)."""
    scale = terms_scale(ranks)
    return dataclasses.replace(info, scale=scale if scale > largest(info) else 0.0)


def _sketch_details(res) -> dict:
    return {"how": "certified randomized sketch of Hessian-vector products", **res.certificate.to_dict()}
