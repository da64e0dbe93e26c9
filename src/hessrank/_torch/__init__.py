"""The PyTorch front end: a ``torch.nn.Module`` as a :class:`~hessrank.curvature.CurvatureSource`.

Importing this package does not import PyTorch; :mod:`._source` (which does) is imported
only when a module is passed. :func:`is_torch_module` recognises a module by its class
hierarchy, so it works whether or not PyTorch is installed.
"""

from __future__ import annotations

from ..errors import ConfigError
from ..models.user import is_torch_module

#: what to install for the PyTorch front end
INSTALL_HINT = 'pip install "hessrank[torch]"'


def is_torch_input(f, params) -> bool:
    """Whether ``(f, params)`` of :func:`~hessrank.hessian_ranks` names a PyTorch model: ``f`` a
    module, or ``f`` a ``(module, params)`` pair."""
    if is_torch_module(f):
        return True
    return isinstance(f, tuple) and len(f) == 2 and is_torch_module(f[0])


def require_torch(param: str = "f"):
    """The ``torch`` package, or :class:`ConfigError` naming ``param`` with what to install."""
    try:
        import torch
    except ImportError:
        raise ConfigError.about(param, f"a PyTorch module needs PyTorch: {INSTALL_HINT}") from None
    return torch


def torch_source(f, params, X, Y, *, loss: str, batch_size: int | None):
    """The :class:`~hessrank._torch._source.TorchSource` of ``f`` (a module or a
    ``(module, params)`` pair) and ``params`` (None: the module's own) on ``X, Y``."""
    require_torch()
    from ._source import TorchSource

    if isinstance(f, tuple):
        if params is not None:
            raise ConfigError.about("params", "give the parameters once: (module, params) as f, or module and params")
        f, params = f
    return TorchSource(f, params, X, Y, loss=loss, batch_size=batch_size)


def torch_model(module):
    """The :class:`~hessrank._torch._source.TorchModel` of ``module`` (a network built from a model file)."""
    require_torch("model")
    from ._source import TorchModel

    return TorchModel(module)


def load_torch_checkpoint(model, path):
    """``(model', θ)`` of a :class:`~hessrank._torch._source.TorchModel` at the ``state_dict``
    file ``path`` (``torch.save``, as ``hessian-rank train`` writes ``step<t>.pt``): ``model'``
    holds the file's buffers, θ its parameters. Errors name ``params`` and the file."""
    require_torch("params")
    from ._training import load_state_dict_file

    return load_state_dict_file(model, path)
