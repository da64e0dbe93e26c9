"""hessrank: exact ranks of neural-network Hessian maps next to closed-form theory.

Public API::

    import hessrank
    result = hessrank.run(hessrank.RunConfig(dataset="gaussian", n=50, dim=25, units=(5, 10), K=10))
    result.ranks["H_L"].rank, result.prediction.H_L

Building blocks: :func:`loss_hessian`, :func:`outer_product_hessian`,
:func:`functional_hessian`, :func:`numerical_rank`, :func:`predict_ranks`; without
p×p matrices: :func:`matrix_free_ranks`, :func:`sketch_rank` and the operators
:func:`loss_hessian_operator`, :func:`functional_hessian_operator`,
:func:`outer_product_operator`, :func:`outer_product_factor`. Errors:
:class:`HessrankError` and its kinds :class:`ConfigError`, :class:`DataError`,
:class:`StoreError`. Any JAX model or PyTorch module: :func:`hessian_ranks` (a function over a
pytree of parameters, or a ``torch.nn.Module``, with per-block ranks), :func:`hessian_spectrum`
(its top eigenvalues, trace, density and outliers), :func:`as_linear_operator` (one of its
matrices as a SciPy ``LinearOperator``). PyTorch is optional (``pip install "hessrank[torch]"``).

Importing the package leaves JAX's configuration alone: every entry point computes in
float64 inside a scoped ``jax.enable_x64`` (ranks are wrong in float32) and restores the
caller's setting on return; float32 parameters and data are promoted.
"""

from ._version import __version__
from .config import RunConfig, parse_units
from .curvature import (
                        functional_hessian,
                        functional_hessian_operator,
                        hessians,
                        loss_hessian,
                        loss_hessian_operator,
                        outer_product_factor,
                        outer_product_hessian,
                        outer_product_operator,
)
from .data import Dataset, load_dataset
from .errors import ConfigError, DataError, HessrankError, StoreError
from .linalg import RankInfo, covariance_rank, numerical_rank, sketch_rank
from .measure import (
    ModelResult,
    Result,
    SpectrumOptions,
    as_linear_operator,
    hessian_ranks,
    hessian_spectrum,
    hessian_spectrum_mlp,
    matrix_free_ranks,
    matrix_spectrum,
    operator_spectrum,
    run,
)
from .models import MLP, get_loss
from .theory import Prediction, predict_ranks

__all__ = [
    # running a configuration
    "RunConfig", "parse_units", "run", "Result",
    # any JAX model or PyTorch module
    "hessian_ranks", "ModelResult", "as_linear_operator",
    # dense matrices and ranks
    "loss_hessian", "outer_product_hessian", "functional_hessian", "hessians",
    "numerical_rank", "covariance_rank", "RankInfo",
    # theory
    "predict_ranks", "Prediction",
    # networks, losses, data
    "MLP", "get_loss", "Dataset", "load_dataset",
    # without p×p matrices
    "matrix_free_ranks", "sketch_rank", "loss_hessian_operator", "functional_hessian_operator",
    "outer_product_operator", "outer_product_factor",
    # spectra beyond the rank: top eigenvalues, trace, density, outliers, condition
    "hessian_spectrum", "hessian_spectrum_mlp", "matrix_spectrum", "operator_spectrum", "SpectrumOptions",
    # errors
    "HessrankError", "ConfigError", "DataError", "StoreError",
    "__version__",
]
