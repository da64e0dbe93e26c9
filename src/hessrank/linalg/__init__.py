"""Linear algebra of ranks: the tolerance rule (:mod:`.rank`) and the certified
randomized sketch for matrices known only through products (:mod:`.sketch`)."""

from .rank import (
                   EPS,
                   RTOL_SCAN,
                   RankInfo,
                   covariance_rank,
                   cut_at_scale,
                   numerical_rank,
                   rank_from_eigenvalues,
                   ranks_at_rtols,
                   spectrum,
                   tolerance,
)
from .sketch import Certificate, SketchResult, Subspace, sketch_rank

__all__ = [
    "EPS", "RTOL_SCAN", "RankInfo", "numerical_rank", "covariance_rank", "rank_from_eigenvalues", "ranks_at_rtols",
    "spectrum", "tolerance", "cut_at_scale", "sketch_rank", "SketchResult", "Certificate", "Subspace",
]
