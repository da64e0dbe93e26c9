"""Curvature matrices of a network's loss: dense p×p (:mod:`.dense`) or as operators (:mod:`.operators`),
both built from the shared scalars and batching of :mod:`.core`.

Internal: the stable API is ``hessrank.*``; names here may change between versions.
"""

from .._lazy import lazy_names

#: per submodule, the names it offers here (each imported on first use, none with the package)
__getattr__, __dir__, __all__ = lazy_names(__name__, {
    "core": ("float64_scope", "in_float64", "psd_sqrt", "sample_outputs"),
    "dense": ("hessians", "loss_hessian", "outer_product_factor", "outer_product_hessian", "running_hessians"),
    "interface": ("CurvatureOperator", "CurvatureSource"),
    "source": ("JaxSource", "jax_source"),
    "operators": ("functional_hessian_operator", "loss_hessian_operator", "outer_product_operator"),
})
