"""Linear algebra of ranks: the tolerance rule (:mod:`.rank`), operators from plain functions
(:mod:`.operator`) and the certified randomized sketch for matrices known only through
products (:mod:`.sketch`).

Internal: the stable API is ``hessrank.*`` (``numerical_rank``, ``RankInfo``, ``sketch_rank``,
``SymmetricOperator``, ``as_operator``); names here may change between versions."""

from .rank import (
    RTOL_SCAN,
    RankInfo,
    covariance_rank,
    numerical_rank,
    rank_from_eigenvalues,
    ranks_at_rtols,
    spectrum,
    symmetric_rank,
)
from .sketch import Subspace, sketch_rank

__all__ = [
    "RTOL_SCAN", "RankInfo", "numerical_rank", "symmetric_rank", "covariance_rank", "rank_from_eigenvalues",
    "ranks_at_rtols", "spectrum", "sketch_rank", "Subspace",
]
