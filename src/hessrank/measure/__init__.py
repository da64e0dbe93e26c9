"""Measuring one configuration: the feasibility rule (:mod:`.plan`), dense and
matrix-free ranks, the :class:`Result` and its provenance."""

from .matrixfree import MatrixFreeResult, matrix_free_ranks
from .plan import (
                   MemoryPlan,
                   MethodPlan,
                   available_memory_bytes,
                   check_data_size,
                   dense_memory_bytes,
                   memory_limit,
                   plan_before_loading,
                   plan_memory,
                   plan_method,
)
from .provenance import peak_rss_bytes, provenance
from .run import Result, build, make_result, measure_ranks, run

__all__ = [
    "Result", "run", "build", "make_result", "measure_ranks", "matrix_free_ranks", "MatrixFreeResult",
    "MethodPlan", "MemoryPlan", "plan_method", "plan_memory", "memory_limit", "available_memory_bytes",
    "dense_memory_bytes", "provenance", "peak_rss_bytes", "check_data_size", "plan_before_loading",
]
