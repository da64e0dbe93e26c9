"""hessrank: exact ranks of neural-network Hessian maps next to closed-form theory.

For a network :math:`f_\\theta`, a loss and data, hessrank measures the loss Hessian
:math:`H_L = \\nabla^2_\\theta L`, its outer-product (Gauss–Newton) part
:math:`H_o = \\sum_i J_i^\\top \\Lambda_i J_i` and its functional part :math:`H_F = H_L - H_o`:
their numerical ranks (with the tolerance and the gap at the cut), their spectra, and the
closed-form predictions beside them. Everything named in ``hessrank.__all__`` is the stable
API; the subpackages (``hessrank.measure``, ``hessrank.linalg``, …) are internal.

Example::

    import hessrank
    result = hessrank.run(hessrank.RunConfig(dataset="gaussian", n=50, dim=25, units=(5, 10), K=10))
    print(result.summary())                      # the table `hessian-rank run` prints
    result.ranks["H_L"].rank, result.prediction.H_L

    f, params = hessrank.from_flax(module, variables)          # or from_equinox(model), or your own f
    hessrank.hessian_ranks(f, params, X, labels, loss="cross")
    hessrank.hessian_ranks(torch_module, None, X, labels)      # a torch.nn.Module (pip install "hessrank[torch]")

    hessrank.sketch_rank(lambda V: V @ A, p=A.shape[0]).rank  # any symmetric matrix by its products

Importing the package is cheap: JAX and NumPy are loaded when a name that needs them is
first used. Nothing changes JAX's configuration: every entry point computes in float64
inside a scoped ``jax.enable_x64`` (ranks are wrong in float32) and restores the caller's
setting on return; float32 parameters and data are promoted.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

from ._version import __version__

#: each public name and the module that defines it (imported on first use, PEP 562)
_PUBLIC = {
    # measuring a configuration: the built-in MLP, the CNN or a model file
    "RunConfig": "config",
    "run": "measure.run",
    "Result": "measure.run",
    "spectrum": "measure.spectrum",
    "SpectrumResult": "measure.spectrum",
    "SpectrumOptions": "measure.spectrum",
    "MatrixSpectrum": "measure.spectrum",
    # any JAX model f(params, X) or torch.nn.Module, and adapters for Flax and Equinox modules
    "hessian_ranks": "measure.model",
    "ModelResult": "measure.model",
    "hessian_spectrum": "measure.spectrum",
    "from_flax": "adapters",
    "from_equinox": "adapters",
    "as_linear_operator": "measure.model",
    # the rank rule, and matrices known only through products
    "numerical_rank": "linalg.rank",
    "RankInfo": "linalg.rank",
    "sketch_rank": "linalg.sketch",
    "SketchResult": "linalg.sketch",
    "Certificate": "linalg.sketch",
    "SymmetricOperator": "linalg.operator",
    "as_operator": "linalg.operator",
    "operator_spectrum": "measure.spectrum",
    # closed-form predictions
    "predict_ranks": "theory",
    "Prediction": "theory",
    # data
    "load_dataset": "data",
    "Dataset": "data.base",
    # errors
    "HessrankError": "errors",
    "ConfigError": "errors",
    "DataError": "errors",
    "StoreError": "errors",
}

#: earlier public names, still importable from the package but no longer part of its API
_FORMER = {
    "parse_units": "config",
    "hessian_spectrum_mlp": "measure.spectrum",
    "matrix_spectrum": "measure.spectrum",
    "matrix_free_ranks": "measure.matrixfree",
    "covariance_rank": "linalg.rank",
    "loss_hessian": "curvature.dense",
    "outer_product_hessian": "curvature.dense",
    "functional_hessian": "curvature.dense",
    "hessians": "curvature.dense",
    "outer_product_factor": "curvature.dense",
    "loss_hessian_operator": "curvature.operators",
    "functional_hessian_operator": "curvature.operators",
    "outer_product_operator": "curvature.operators",
    "MLP": "models.mlp",
    "get_loss": "models.losses",
}

__all__ = [
    # measuring a configuration: the built-in MLP, the CNN or a model file
    "RunConfig", "run", "Result", "spectrum", "SpectrumResult", "SpectrumOptions", "MatrixSpectrum",
    # any JAX model f(params, X) or torch.nn.Module, and adapters for Flax and Equinox modules
    "hessian_ranks", "ModelResult", "hessian_spectrum", "from_flax", "from_equinox", "as_linear_operator",
    # the rank rule, and matrices known only through products
    "numerical_rank", "RankInfo", "sketch_rank", "SketchResult", "Certificate", "SymmetricOperator",
    "as_operator", "operator_spectrum",
    # closed-form predictions
    "predict_ranks", "Prediction",
    # data
    "load_dataset", "Dataset",
    # errors
    "HessrankError", "ConfigError", "DataError", "StoreError",
    "__version__",
]


def __getattr__(name: str):
    module = _PUBLIC.get(name) or _FORMER.get(name)
    if module is None:
        if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
            return importlib.import_module(f".{name}", __name__)   # a subpackage: hessrank.linalg
        raise AttributeError(f"module 'hessrank' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # what type checkers and IDEs see; at run time the names above load on first use
    from .adapters import from_equinox, from_flax
    from .config import RunConfig
    from .data import load_dataset
    from .data.base import Dataset
    from .errors import ConfigError, DataError, HessrankError, StoreError
    from .linalg.operator import SymmetricOperator, as_operator
    from .linalg.rank import RankInfo, numerical_rank
    from .linalg.sketch import Certificate, SketchResult, sketch_rank
    from .measure.model import ModelResult, as_linear_operator, hessian_ranks
    from .measure.run import Result, run
    from .measure.spectrum import (
        MatrixSpectrum,
        SpectrumOptions,
        SpectrumResult,
        hessian_spectrum,
        operator_spectrum,
        spectrum,
    )
    from .theory import Prediction, predict_ranks
