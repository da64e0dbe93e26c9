"""Linear algebra of ranks: the tolerance rule (:mod:`.rank`), operators from plain functions
(:mod:`.operator`) and the certified randomized sketch for matrices known only through
products (:mod:`.sketch`).

Internal: the stable API is ``hessrank.*`` (``numerical_rank``, ``RankInfo``, ``sketch_rank``,
``SymmetricOperator``, ``as_operator``); names here may change between versions."""

from .operator import SymmetricOperator, as_operator
from .rank import (
                   EPS,
                   RTOL_SCAN,
                   RankInfo,
                   covariance_rank,
                   numerical_rank,
                   rank_from_eigenvalues,
                   ranks_at_rtols,
                   spectrum,
                   tolerance,
)
from .sketch import Certificate, SketchResult, Subspace, sketch_rank

__all__ = [
    "EPS", "RTOL_SCAN", "RankInfo", "numerical_rank", "covariance_rank", "rank_from_eigenvalues", "ranks_at_rtols",
    "spectrum", "tolerance", "sketch_rank", "SketchResult", "Certificate", "Subspace", "SymmetricOperator",
    "as_operator",
]
