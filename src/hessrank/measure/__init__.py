"""Measuring one configuration: the feasibility rule (:mod:`.plan`), dense and
matrix-free ranks, the results (:class:`~hessrank.Result`) and their provenance.

The functions ``run`` and ``provenance`` share their submodules' names: import them from
:mod:`.run` and :mod:`.provenance`.

Internal: the stable API is ``hessrank.*``; names here may change between versions.
"""

from .._lazy import lazy_names

#: per submodule, the names it offers here (each imported on first use, none with the package)
__getattr__, __dir__, __all__ = lazy_names(__name__, {
    "matrixfree": ("matrix_free_ranks",),
    "model": ("measure_model",),
    "plan": ("MethodPlan", "expected_basis", "memory_limit", "plan_before_loading", "plan_memory", "plan_method"),
    "provenance": ("peak_rss_bytes",),
    "run": ("build", "make_result", "measure_model_ranks", "predict_for"),
    "spectrum": ("SpectrumOptions", "function_spectrum", "hessian_spectrum_mlp", "matrix_spectrum",
                 "measure_spectra", "plan_spectrum"),
})
