r"""The scale of each matrix's cut: the problem's, not only the matrix's own largest eigenvalue.

:math:`H_L = H_o + H_F`, and :math:`H_F = \sum_i \sum_k g_{ik} \nabla^2_\theta f_k(x_i)` is
a sum whose terms can cancel: at a least-squares minimum of a linear network it depends
on the data only through :math:`\Omega = \sum_i r_i x_i^\top = 0`, so :math:`H_F = 0` in
exact arithmetic and its own :math:`\max|\lambda|` is rounding — a cut relative to it
counts rounding eigenvalues as rank. :math:`H_F` and :math:`H_L` are therefore ranked
against :math:`s = \max(\max|\lambda(H_o)|, \max|\lambda(H_F)|)`, the magnitude of the
terms :math:`H_L` is the sum of (:math:`\max|\lambda(H_L)| \le 2s`, and a matrix's own
maximum is used when larger). :math:`H_o = A^\top A` keeps its own scale: its zero
eigenvalues are exact where :math:`A` has a null space, whatever its size.
Blocks inherit the whole matrix's cut (:mod:`.blocks`).
"""

from __future__ import annotations

import numpy as np

from ..linalg.rank import RankInfo, cut_at_scale, rank_from_eigenvalues

#: the matrices ranked at the terms' scale; H_o keeps its own
AT_TERMS_SCALE = ("H_L", "H_F")


def largest(info: RankInfo) -> float:
    """``max|λ|`` of ``info``'s eigenvalues (0 for none)."""
    mags = np.abs(np.asarray(info.eigenvalues, dtype=np.float64))
    return float(mags.max()) if mags.size else 0.0


def terms_scale(ranks: dict[str, RankInfo]) -> float:
    """``max|λ|`` over ``H_o`` and ``H_F`` among ``ranks`` (those known so far)."""
    return max((largest(ranks[m]) for m in ("H_o", "H_F") if m in ranks), default=0.0)


def problem_cut(name: str, ranks: dict[str, RankInfo], size: int, *, rtol: float | None,
                atol: float | None) -> tuple[float | None, float | None]:
    """``(rtol, atol)`` for a solver ranking ``name`` after ``ranks`` are known (a sketch):
    the cut at the terms' scale for H_F and H_L, the given rule for H_o."""
    if name not in AT_TERMS_SCALE:
        return rtol, atol
    return cut_at_scale(size, terms_scale(ranks), rtol=rtol, atol=atol)


def at_problem_scale(ranks: dict[str, RankInfo], *, rtol: float | None, atol: float | None) -> dict[str, RankInfo]:
    """``ranks`` (each counted at its own scale) with H_F and H_L counted again at the terms' scale."""
    scale = terms_scale(ranks)
    return {name: (rank_from_eigenvalues(info.eigenvalues, info.size, rtol=rtol, atol=atol, scale=scale)
                   if name in AT_TERMS_SCALE else info) for name, info in ranks.items()}
