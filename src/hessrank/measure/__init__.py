"""Measuring one configuration: the feasibility rule (:mod:`.plan`), dense and
matrix-free ranks, the :class:`Result` and its provenance."""

from .blocks import BlockRanks, resolve_blocks
from .matrixfree import MatrixFreeResult, matrix_free_ranks
from .model import ModelResult, as_linear_operator, hessian_ranks, measure_model, trivial_bounds
from .plan import (
                   MemoryPlan,
                   MethodPlan,
                   available_memory_bytes,
                   check_data_size,
                   dense_memory_bytes,
                   expected_basis,
                   expected_seconds,
                   memory_limit,
                   plan_before_loading,
                   plan_memory,
                   plan_method,
)
from .provenance import peak_rss_bytes, provenance
from .run import Result, build, make_result, measure_model_ranks, measure_ranks, predict_for, run
from .spectrum import (
                       BlockSpectrum,
                       MatrixSpectrum,
                       SpectrumOptions,
                       SpectrumResult,
                       function_spectrum,
                       hessian_spectrum,
                       hessian_spectrum_mlp,
                       matrix_spectrum,
                       measure_model_spectrum,
                       measure_spectra,
                       operator_spectrum,
                       plan_spectrum,
)

__all__ = [
    "Result", "run", "build", "make_result", "measure_ranks", "matrix_free_ranks", "MatrixFreeResult",
    "MethodPlan", "MemoryPlan", "plan_method", "plan_memory", "memory_limit", "available_memory_bytes",
    "dense_memory_bytes", "provenance", "peak_rss_bytes", "hessian_ranks", "measure_model", "ModelResult",
    "as_linear_operator",
    "measure_model_ranks", "BlockRanks", "resolve_blocks", "trivial_bounds", "check_data_size", "plan_before_loading",
    "SpectrumOptions", "MatrixSpectrum", "SpectrumResult", "hessian_spectrum_mlp", "matrix_spectrum",
    "operator_spectrum", "measure_spectra", "plan_spectrum", "hessian_spectrum", "measure_model_spectrum",
    "function_spectrum", "BlockSpectrum",
    "expected_basis", "expected_seconds", "predict_for",
]
