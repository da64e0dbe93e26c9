"""Curvature matrices of a network's loss: dense p×p (:mod:`.dense`) or as operators (:mod:`.operators`),
both built from the shared scalars and batching of :mod:`.core`.

Internal: the stable API is ``hessrank.*``; names here may change between versions.
"""

from .core import float64_scope, in_float64, psd_sqrt, sample_outputs
from .dense import hessians, loss_hessian, outer_product_factor, outer_product_hessian, running_hessians
from .operators import CurvatureOperator, functional_hessian_operator, loss_hessian_operator, outer_product_operator
from .source import CurvatureSource, JaxSource, jax_source

__all__ = [
    "hessians", "running_hessians", "loss_hessian", "outer_product_hessian", "outer_product_factor",
    "CurvatureOperator", "loss_hessian_operator", "functional_hessian_operator", "outer_product_operator",
    "float64_scope", "in_float64", "sample_outputs", "psd_sqrt", "CurvatureSource", "JaxSource", "jax_source",
]
