r"""Flax and Equinox models as ``(f, params)``: the form :func:`hessrank.hessian_ranks` takes.

The Hessians are taken over the *trainable* parameters only: :math:`\theta` is the
floating-point arrays a model learns, and everything else a model holds (BatchNorm's
running statistics, integer indices, activation functions, shapes) is a constant of ``f``.
Counting running statistics as parameters would add rows and columns that the loss does
not depend on through training, and change p and the ranks.

* :func:`from_flax` — a Flax Linen module and its variables: the ``params`` collection is
  :math:`\theta`; every other collection (``batch_stats``, …) is held fixed. A Flax NNX
  module: its ``nnx.Param`` variables are :math:`\theta`; the rest (``nnx.BatchStat``, …)
  is held fixed.
* :func:`from_equinox` — an Equinox module: its inexact (floating-point) array leaves are
  :math:`\theta`; integer arrays and non-array leaves are held fixed.

Flax and Equinox are imported when an adapter is called; without them the call stops with
one line saying how to install them (``pip install "hessrank[models]"``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from .errors import ConfigError, HessrankError

_INSTALL = 'pip install "hessrank[models]"'


def _require(package: str, adapter: str):
    try:
        return importlib.import_module(package)
    except ImportError:
        raise HessrankError(f"{adapter} needs {package}, which is not installed: {_INSTALL}") from None


def from_flax(module, variables=None, **apply_kwargs) -> tuple[Callable, object]:
    """A Flax module as ``(f, params)`` over its trainable parameters alone.

    Linen: ``f(params, X) = module.apply({**fixed, "params": params}, X, **apply_kwargs)``
    with ``mutable=False`` (Flax's default): ``fixed`` holds every other collection of
    ``variables`` (``batch_stats``, …) unchanged, so they are constants, not parameters.
    NNX (``variables`` left out): ``graphdef, params, fixed = nnx.split(module, nnx.Param, ...)``
    and ``f(params, X) = nnx.merge(graphdef, params, fixed)(X)``. Either way the module must
    compute in evaluation mode without updating its state — e.g. BatchNorm with
    ``use_running_average=True``, or ``train=False`` passed through ``apply_kwargs``; that is
    the module's own business, as it is in Flax.

    Args:
        module: a ``flax.linen.Module`` whose ``apply`` maps a batch ``X`` (b, …) to outputs
            (b, K), or a ``flax.nnx.Module`` called on the batch.
        variables: for a Linen module, what ``module.init`` returned: a mapping with a
            ``params`` collection; for an NNX module, ``None``.
        apply_kwargs: keyword arguments passed to every ``module.apply`` (Linen, e.g. ``train=False``).

    Returns:
        ``(f, params)`` for :func:`hessrank.hessian_ranks` and :func:`hessrank.hessian_spectrum`.

    Raises:
        HessrankError: Flax is not installed.
        ConfigError: ``module`` is neither a Linen module with ``variables`` nor an NNX module,
            or ``variables`` has no ``params`` collection.
    """
    _require("flax", "from_flax")
    nnx = importlib.import_module("flax.nnx")
    if isinstance(module, nnx.Module):
        if variables is not None or apply_kwargs:
            raise ConfigError.about("variables", "an NNX module holds its own variables: call from_flax(module)")
        graphdef, params, fixed = nnx.split(module, nnx.Param, ...)

        def f_nnx(params, X):
            return nnx.merge(graphdef, params, fixed)(X)

        return f_nnx, params
    if not callable(getattr(module, "apply", None)):
        raise ConfigError.invalid("module", type(module).__name__, "not a Flax Linen or NNX module (it has no "
                                                                   "apply)", quoted=False)
    if variables is None:
        raise ConfigError.about("variables", "missing: a Linen module needs what module.init returned")
    try:
        collections = dict(variables)
    except (TypeError, ValueError):
        raise ConfigError.invalid("variables", type(variables).__name__, "give the mapping module.init returned",
                                  quoted=False) from None
    if "params" not in collections:
        raise ConfigError.about("variables", f"no 'params' collection (found {', '.join(map(str, collections))}"
                                             " or none): give what module.init returned")
    params = collections.pop("params")
    fixed = collections

    def f(params, X):
        return module.apply({**fixed, "params": params}, X, **apply_kwargs)

    return f, params


def from_equinox(model, *, batched: bool = False) -> tuple[Callable, object]:
    """An Equinox module as ``(f, params)`` over its inexact (floating-point) array leaves.

    ``params, static = eqx.partition(model, eqx.is_inexact_array)``: integer arrays and
    leaves that are not arrays (activation functions, sizes, flags) stay in ``static`` and
    are held fixed; ``f`` recombines them (``eqx.combine``) before calling the model.

    Args:
        model: an ``equinox.Module``.
        batched: ``False`` (the Equinox convention): ``model`` takes one sample and ``f``
            maps it over the batch with ``jax.vmap``; ``True``: ``model`` takes the batch itself.

    Returns:
        ``(f, params)`` for :func:`hessrank.hessian_ranks` and :func:`hessrank.hessian_spectrum`.

    Raises:
        HessrankError: Equinox is not installed.
        ConfigError: ``model`` has no floating-point array leaf.
    """
    eqx = _require("equinox", "from_equinox")
    import jax

    params, static = eqx.partition(model, eqx.is_inexact_array)
    if not jax.tree_util.tree_leaves(params):
        raise ConfigError.invalid("model", type(model).__name__, "has no floating-point array leaves to "
                                                                 "differentiate", quoted=False)

    def f(params, X):
        net = eqx.combine(params, static)
        return net(X) if batched else jax.vmap(net)(X)

    return f, params
