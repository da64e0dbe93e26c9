"""Measuring one configuration: the feasibility rule (:mod:`.plan`), dense and
matrix-free ranks, the results (:class:`~hessrank.Result`) and their provenance.

Internal: the stable API is ``hessrank.*``; names here may change between versions.
"""

from .matrixfree import matrix_free_ranks
from .model import measure_model
from .plan import MethodPlan, expected_basis, memory_limit, plan_before_loading, plan_memory, plan_method
from .provenance import peak_rss_bytes, provenance
from .run import build, make_result, measure_model_ranks, predict_for, run
from .spectrum import (
    SpectrumOptions,
    function_spectrum,
    hessian_spectrum_mlp,
    matrix_spectrum,
    measure_spectra,
    plan_spectrum,
)

__all__ = [
    "run", "build", "make_result", "matrix_free_ranks", "MethodPlan", "plan_method", "plan_memory",
    "memory_limit", "provenance", "peak_rss_bytes", "measure_model", "measure_model_ranks",
    "plan_before_loading", "SpectrumOptions", "hessian_spectrum_mlp", "matrix_spectrum", "measure_spectra",
    "plan_spectrum", "function_spectrum", "expected_basis", "predict_for",
]
