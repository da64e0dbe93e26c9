r"""Ranks of the diagonal blocks of H_L, H_o, H_F, one block per group of parameter arrays.

A block :math:`b` is a set of coordinates of :math:`\theta` (one or more parameter
arrays, see :func:`resolve_blocks`); its diagonal block of :math:`H` is
:math:`H_{bb} = E_b^\top H E_b`, with :math:`E_b` the p×s embedding of the block's
coordinates. Its rank is counted at the tolerance of the *whole* matrix (the block
inherits its scale): with a block-relative cut a block of rounding noise — each
layer's diagonal block of :math:`H_F` for a linear network, zero in exact arithmetic —
would read as full rank.

* dense: the s×s sub-matrix of the p×p matrix;
* :math:`H_o = A^\top A` from its factor: :math:`(H_o)_{bb} = A_b^\top A_b` with
  :math:`A_b` the block's columns of :math:`A`, ranked by the smaller of
  :math:`A_b^\top A_b` and :math:`A_b A_b^\top`;
* matrix-free: the operator restricted to the block (:func:`restrict`: embed
  :math:`v \in \mathbb{R}^s` into :math:`\mathbb{R}^p` with zeros, apply, keep the
  block's rows), sketched with ``atol`` = the whole matrix's tolerance. No p×p array.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..config import BLOCK_KINDS
from ..curvature.interface import CurvatureOperator
from ..errors import ConfigError
from ..linalg import RankInfo, rank_from_eigenvalues, spectrum
from ..matrices import MATRICES
from ..models.base import ParameterLayout

if TYPE_CHECKING:
    from ..linalg.spectral import KnownSpectrum


@dataclass
class BlockRanks:
    """The diagonal blocks of H_L, H_o, H_F for one block of ``size`` parameters."""

    size: int
    leaves: tuple[str, ...]
    ranks: dict[str, RankInfo]
    details: dict[str, dict] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """``{"size", "leaves", "ranks", "tolerance", "gap_decades", "method_details"}`` as JSON-ready values."""
        gap = {k: (None if v.gap_decades is None or not math.isfinite(v.gap_decades) else float(v.gap_decades))
               for k, v in self.ranks.items()}
        return {"size": self.size, "leaves": list(self.leaves), "ranks": {k: v.rank for k, v in self.ranks.items()},
                "tolerance": {k: v.tol for k, v in self.ranks.items()}, "gap_decades": gap,
                "method_details": self.details}


@dataclass(frozen=True)
class Block:
    """A block: its ``leaves`` (names) and the coordinates ``index`` of θ they occupy."""

    leaves: tuple[str, ...]
    index: np.ndarray

    @property
    def size(self) -> int:
        """Number of parameters in the block."""
        return int(self.index.size)


def resolve_blocks(model, blocks) -> dict[str, Block]:
    """``{name: Block}`` for ``blocks``: ``None`` (no blocks), ``"leaves"`` (each parameter
    array), ``"layers"`` (arrays grouped by ``model.layer_of``) or a mapping name → list of
    leaf names (``"conv1/w"``). Raises :class:`ConfigError` naming ``blocks``."""
    if blocks is None:
        return {}
    if not isinstance(model, ParameterLayout):
        raise ConfigError.invalid("blocks", blocks, f"{type(model).__name__} does not name its parameter arrays "
                                                    "(it has no leaves / layer_of)")
    offsets, start = {}, 0
    for name, size in model.leaves:
        if name in offsets:  # two leaves under one name: a block would silently lose one
            raise ConfigError.invalid("blocks", name, "two parameter arrays have this name; rename one")
        offsets[name] = (start, size)
        start += size
    if isinstance(blocks, str):
        if blocks == "leaves":
            groups = {name: [name] for name in offsets}
        elif blocks == "layers":
            groups = {}
            for name in offsets:
                groups.setdefault(model.layer_of(name), []).append(name)
        else:
            raise ConfigError.invalid("blocks", blocks, f"not one of {', '.join(BLOCK_KINDS)} (or a mapping "
                                                        "name -> list of leaf names)")
    elif isinstance(blocks, Mapping):
        groups = {}
        for name, leaves in blocks.items():
            if not isinstance(name, str) or not name:
                raise ConfigError.invalid("blocks", name, "block names must be non-empty strings", quoted=False)
            if isinstance(leaves, str):
                leaves = [leaves]
            elif not isinstance(leaves, list | tuple):
                raise ConfigError.invalid("blocks", name, f"the block's leaves are a {type(leaves).__name__}: give "
                                                          "a list of leaf names")
            leaves = list(leaves)
            if not leaves:
                raise ConfigError.invalid("blocks", name, "a block needs at least one leaf")
            for leaf in leaves:
                if not isinstance(leaf, str) or leaf not in offsets:
                    raise ConfigError.invalid("blocks", leaf, f"no such parameter array; the leaves are "
                                                              f"{', '.join(offsets)}", quoted=isinstance(leaf, str))
            if len(set(leaves)) < len(leaves):
                twice = next(leaf for leaf in leaves if leaves.count(leaf) > 1)
                raise ConfigError.invalid("blocks", twice, f"listed twice in block {name!r}; give each leaf once")
            groups[name] = leaves
    else:
        raise ConfigError.invalid("blocks", blocks, "give 'leaves', 'layers' or a mapping name -> list of leaf names",
                                  quoted=False)
    out = {name: Block(tuple(leaves), np.concatenate([np.arange(offsets[leaf][0], sum(offsets[leaf]))
                                                      for leaf in leaves]))
           for name, leaves in groups.items()}
    for name, block in out.items():
        if block.size == 0:
            raise ConfigError.invalid("blocks", name, f"the block holds no parameters (its leaves "
                                                      f"{', '.join(block.leaves)} are empty arrays)")
    return out


def at_whole_tolerance(eigenvalues, size: int, whole: RankInfo) -> RankInfo:
    """A block's :class:`RankInfo`: its eigenvalues counted at the whole matrix's tolerance."""
    return rank_from_eigenvalues(eigenvalues, size, atol=whole.tol)


def dense_block_spectrum(H: np.ndarray, block: Block) -> np.ndarray:
    """Eigenvalues of the diagonal block ``H[b, b]`` of a dense p×p matrix."""
    return spectrum(H[np.ix_(block.index, block.index)], overwrite=True)


def factor_block_spectrum(A: np.ndarray, block: Block) -> np.ndarray:
    """Non-zero part of the spectrum of ``(AᵀA)[b, b] = A_bᵀ A_b``, by the smaller Gram matrix."""
    Ab = A[:, block.index]
    return spectrum(Ab.T @ Ab if Ab.shape[1] <= Ab.shape[0] else Ab @ Ab.T, overwrite=True)


def dense_block_known(H: np.ndarray, block: Block) -> KnownSpectrum:
    """The exact spectrum of the diagonal block ``H[b, b]`` (its trace: the sum of the block's diagonal)."""
    from ..linalg.spectral import known_from_dense

    return known_from_dense(H[np.ix_(block.index, block.index)])


def factor_block_known(A: np.ndarray, block: Block) -> KnownSpectrum:
    """The exact spectrum of ``(AᵀA)[b, b] = A_bᵀ A_b``, by the smaller of ``A_bᵀA_b`` and ``A_b A_bᵀ``."""
    from ..linalg.spectral import known_from_dense, known_from_factor

    Ab = A[:, block.index]
    return known_from_dense(Ab.T @ Ab) if Ab.shape[1] <= Ab.shape[0] else known_from_factor(Ab)


def restrict(op: CurvatureOperator, block: Block) -> CurvatureOperator:
    """The diagonal block of ``op`` as an operator on the block's s coordinates:
    ``v ∈ R^s`` → embed in ``R^p`` with zeros → ``op`` → the block's coordinates."""
    idx, p = block.index, op.p

    def matmat(V) -> np.ndarray:
        V = np.asarray(V, dtype=np.float64)
        full = np.zeros((V.shape[0], p))
        full[:, idx] = V
        return op(full)[:, idx]

    return CurvatureOperator(f"{op.name}[block]", block.size, matmat)


def order_ranks(ranks: dict[str, RankInfo]) -> dict[str, RankInfo]:
    """``ranks`` in the order H_L, H_o, H_F."""
    return {k: ranks[k] for k in MATRICES if k in ranks}
