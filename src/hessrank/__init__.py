"""hessrank: exact ranks of neural-network Hessian maps next to closed-form theory.

Public API::

    import hessrank
    result = hessrank.run(hessrank.RunConfig(dataset="gaussian", n=50, dim=25, units=(5, 10), K=10))
    result.ranks["H_L"].rank, result.prediction.H_L

Building blocks: :func:`loss_hessian`, :func:`outer_product_hessian`,
:func:`functional_hessian`, :func:`numerical_rank`, :func:`predict_ranks`; without
p×p matrices: :func:`matrix_free_ranks`, :func:`sketch_rank` and the operators
:func:`loss_hessian_operator`, :func:`functional_hessian_operator`,
:func:`outer_product_operator`, :func:`outer_product_factor`.
Importing the package switches JAX to float64 (ranks are wrong in float32).
"""

import jax

jax.config.update("jax_enable_x64", True)

__version__ = "0.1.0"

from .config import ConfigError, RunConfig, parse_units  # noqa: E402
from .curvature import functional_hessian, hessians, loss_hessian, outer_product_hessian  # noqa: E402
from .data import Dataset, load_dataset  # noqa: E402
from .experiment import Result, run  # noqa: E402
from .losses import get_loss  # noqa: E402
from .matrixfree import matrix_free_ranks  # noqa: E402
from .models import MLP  # noqa: E402
from .operators import (functional_hessian_operator, loss_hessian_operator, outer_product_factor,  # noqa: E402
                        outer_product_operator)
from .randomized import sketch_rank  # noqa: E402
from .rank import RankInfo, covariance_rank, numerical_rank  # noqa: E402
from .theory import Prediction, predict_ranks  # noqa: E402

__all__ = [
    "ConfigError", "RunConfig", "parse_units", "run", "Result",
    "loss_hessian", "outer_product_hessian", "functional_hessian", "hessians",
    "numerical_rank", "covariance_rank", "RankInfo", "predict_ranks", "Prediction",
    "MLP", "get_loss", "Dataset", "load_dataset",
    "matrix_free_ranks", "sketch_rank", "loss_hessian_operator", "functional_hessian_operator",
    "outer_product_operator", "outer_product_factor",
]
