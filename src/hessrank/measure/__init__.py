"""Measuring one configuration: the feasibility rule (:mod:`.plan`), dense and
matrix-free ranks, the :class:`Result` and its provenance."""

from .matrixfree import MatrixFreeResult, matrix_free_ranks
from .plan import (
                   MemoryPlan,
                   MethodPlan,
                   available_memory_bytes,
                   dense_memory_bytes,
                   memory_limit,
                   plan_memory,
                   plan_method,
)
from .provenance import peak_rss_bytes, provenance
from .run import Result, build, make_result, measure_ranks, run
from .spectrum import (
                       MatrixSpectrum,
                       SpectrumOptions,
                       SpectrumResult,
                       hessian_spectrum_mlp,
                       matrix_spectrum,
                       measure_spectra,
                       operator_spectrum,
                       plan_spectrum,
)

__all__ = [
    "Result", "run", "build", "make_result", "measure_ranks", "matrix_free_ranks", "MatrixFreeResult",
    "MethodPlan", "MemoryPlan", "plan_method", "plan_memory", "memory_limit", "available_memory_bytes",
    "dense_memory_bytes", "provenance", "peak_rss_bytes",
    "SpectrumOptions", "MatrixSpectrum", "SpectrumResult", "hessian_spectrum_mlp", "matrix_spectrum",
    "operator_spectrum", "measure_spectra", "plan_spectrum",
]
