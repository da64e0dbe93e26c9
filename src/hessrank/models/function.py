r"""A user's network ``f(params, X)`` over any pytree of parameters, as a :class:`~hessrank.models.Model`.

``params`` (a dict of arrays, Flax variables, the arrays of an Equinox module) is
flattened by ``jax.flatten_util.ravel_pytree`` into one vector :math:`\theta`; then
``apply(θ, X) = f(unravel(θ), X)``. A leaf is named by its path, keys joined by
``/`` (``{"conv1": {"w": …}}`` → ``conv1/w``); its layer is the first key of that path
after the keys that every leaf shares (Flax's ``params/…`` collection, say).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ..errors import ConfigError, first_line
from .base import Model, mixing_change


@dataclass(frozen=True, eq=False)  # hashed by identity: a static jit argument that reuses its compiled code
class FunctionModel:
    """``f(params, X)`` on the flat vector: ``apply(θ, X) = f(unravel(θ), X)``."""

    f: Callable
    unravel: Callable
    num_params: int
    leaves: tuple[tuple[str, int], ...]
    #: path components every leaf shares (skipped when naming layers)
    shared_prefix: int = 0
    #: ``(leaf name, shape)`` of each leaf, in θ's order (for saving and reading named arrays)
    shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()

    def apply(self, theta, X):
        """Outputs ``f(unravel(θ), X)``."""
        return self.f(self.unravel(theta), X)

    def layer_of(self, leaf: str) -> str:
        """The first key of the leaf's path after the keys all leaves share."""
        parts = leaf.split("/")
        return parts[min(self.shared_prefix, len(parts) - 1)]


def leaf_name(path) -> str:
    """A pytree key path as ``a/b/0``: dict keys, attribute names and indices joined by ``/``."""
    return jax.tree_util.keystr(tuple(path), simple=True, separator="/") or "params"


def function_model(f: Callable, params) -> tuple[FunctionModel, jax.Array]:
    """``(model, θ)``: ``f`` as a :class:`FunctionModel` and ``params`` as one float64 vector.

    Every leaf of ``params`` must be a floating-point array (float32 is promoted to
    float64). Raises :class:`~hessrank.ConfigError` naming the parameter otherwise.
    """
    if not callable(f):
        raise ConfigError.invalid("f", f, "not callable: give f(params, X_batch) -> outputs (b, K)", quoted=False)
    with jax.enable_x64(True):
        flat, _ = jax.tree_util.tree_flatten_with_path(params)
        if not flat:
            raise ConfigError.about("params", "no parameter arrays (an empty pytree)")
        names, arrays = [], []
        for path, leaf in flat:
            name = leaf_name(path)
            if not isinstance(leaf, np.ndarray | jax.Array) or not jnp.issubdtype(leaf.dtype, jnp.floating):
                what = f"{leaf.dtype} array" if hasattr(leaf, "dtype") else type(leaf).__name__
                raise ConfigError.invalid("params", name, f"leaf is a {what}: every leaf must be a floating-point "
                                                          "array (filter out the rest, e.g. eqx.partition)")
            if name in names:  # e.g. {"a/b": …} beside {"a": {"b": …}}: blocks and saved arrays need one each
                raise ConfigError.invalid("params", name, "two leaves have this name (keys joined by '/'); rename "
                                                          "one")
            names.append(name)
            arrays.append(jnp.asarray(leaf, dtype=jnp.float64))
        leaves64 = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(params), arrays)
        theta, unravel = ravel_pytree(leaves64)
        if len(names) > 1:
            split = [n.split("/") for n in names]
            shared = 0
            while all(len(s) > shared + 1 and s[shared] == split[0][shared] for s in split):
                shared += 1
        else:
            shared = 0
        model = FunctionModel(f=f, unravel=unravel, num_params=int(theta.shape[0]),
                              leaves=tuple((n, int(a.size)) for n, a in zip(names, arrays)), shared_prefix=shared,
                              shapes=tuple((n, tuple(int(x) for x in a.shape)) for n, a in zip(names, arrays)))
        return model, theta


#: value types narrower than float64: a model that computes in them has Hessians of float32-level
#: rounding (about 1e-7 relative) where ranks are cut at about p·1e-16
_NARROW = frozenset({"float32", "float16", "bfloat16", "complex64"})
#: primitives that run host code JAX cannot differentiate
_HOST_CALLS = frozenset({"pure_callback", "io_callback", "callback"})


def _sub_jaxprs(value):
    """The jaxprs held by an equation parameter (a cond's branches, a scan's body, a pjit's jaxpr)."""
    if hasattr(value, "eqns"):
        yield value
    elif hasattr(value, "jaxpr") and hasattr(value.jaxpr, "eqns"):
        yield value.jaxpr
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _sub_jaxprs(item)


def _first_unsupported(jaxpr, tainted=None):
    """``(what, primitive)`` of the first operation that computes below float64 on values
    derived from the inputs (θ, X) or calls the host, searching nested jaxprs; ``None`` when
    there is none. Constants the model holds in float32 (e.g. a BatchNorm's running
    statistics) are exact in float64 and are not flagged."""
    tainted = set(jaxpr.invars) if tainted is None else tainted
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name in _HOST_CALLS:
            return "host", name
        inputs = [v for v in eqn.invars if _is_var(v)]
        if not any(v in tainted for v in inputs):
            continue
        tainted.update(eqn.outvars)
        for var in eqn.outvars:
            dtype = getattr(getattr(var, "aval", None), "dtype", None)
            if dtype is not None and str(dtype) in _NARROW:
                return str(dtype), name
        for value in eqn.params.values():
            for sub in _sub_jaxprs(value):
                found = _first_unsupported(sub, set(sub.invars))
                if found:
                    return found
    return None


def _is_var(v) -> bool:
    """A jaxpr variable (not a literal constant), usable as a set member."""
    try:
        hash(v)
    except TypeError:
        return False
    return hasattr(v, "aval") and not hasattr(v, "val")


def check_precision(model: Model, theta, X) -> None:
    """Refuse, in one line naming ``f``, a model whose program computes below float64 (a
    Flax module with ``dtype=float32``, a cast inside ``f``) or calls host code through a
    callback: its ranks would count float32 rounding, or it has no derivatives."""
    with jax.enable_x64(True):
        try:
            program = jax.make_jaxpr(model.apply)(theta, X)
        except Exception:  # tracing errors are reported by the evaluation that follows
            return
    found = _first_unsupported(program.jaxpr)
    if found is None:
        return
    what, primitive = found
    if what == "host":
        raise ConfigError.about("f", f"calls host code ({primitive}), which JAX cannot differentiate twice: write "
                                     "the model in JAX operations")
    raise ConfigError.about("f", f"computes in {what} inside ({primitive}): its Hessians would carry {what} "
                                 "rounding, far above the float64 cut of the ranks; build it in float64 (Flax: "
                                 "dtype=jnp.float64, param_dtype=jnp.float64) or remove the cast")


def check_outputs(model: Model, theta, X, K: int, batch_size: int) -> None:
    """Refuse, in one line naming ``f``, a model that computes below float64 or calls host
    code (:func:`check_precision`), or whose outputs on ``X`` are not finite real arrays of shape (b, K)."""
    apply = jax.jit(model.apply)
    check_precision(model, theta, X[:batch_size])
    first_batch = None
    for start in range(0, X.shape[0], batch_size):
        Xb = X[start:start + batch_size]
        try:
            F = apply(theta, Xb)
        except Exception as err:  # the user's code: report it in one line
            raise ConfigError.about("f", f"raised {type(err).__name__} on a batch of shape {Xb.shape}: "
                                         f"{first_line(err)}") from None
        shape = tuple(getattr(F, "shape", ()))
        if shape != (Xb.shape[0], K):
            raise ConfigError.invalid("f", shape, f"outputs of shape {shape} for a batch of {Xb.shape[0]}: need "
                                                  f"(b, K) = ({Xb.shape[0]}, {K}), K the targets' columns",
                                      quoted=False)
        dtype = getattr(F, "dtype", None)
        if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
            raise ConfigError.about("f", f"outputs of type {dtype}: need real floating-point outputs (float64)")
        if not bool(np.all(np.isfinite(np.asarray(F)))):
            raise ConfigError.about("f", f"outputs are not finite (NaN or inf) on samples {start}.."
                                         f"{start + Xb.shape[0] - 1}")
        if first_batch is None:
            first_batch = np.asarray(F)
    check_per_sample(model, theta, X[:batch_size], first_batch)


def check_per_sample(model: Model, theta, X, whole) -> None:
    """Refuse, in one line naming ``f``, a model whose output on a sample depends on the other
    samples of its batch (a statistic of the batch, such as centring by its mean): the engine
    takes Jacobians sample by sample and sums the loss over samples, so such an f would be
    measured as another function. The batch's outputs ``whole`` on ``X`` are compared with those
    of each sample alone (:func:`mixing_change`)."""
    if X.shape[0] < 2:
        return
    try:
        alone = np.asarray(jax.jit(jax.vmap(lambda x: model.apply(theta, x[None])[0]))(X))
    except Exception as err:  # the user's code on one sample: report it in one line
        raise ConfigError.about("f", f"raised {type(err).__name__} on one sample alone (hessrank evaluates f "
                                     f"sample by sample for the Jacobians): {first_line(err)}") from None
    change = mixing_change(whole, alone)
    if change is not None:
        raise ConfigError.about("f", f"the outputs on a sample depend on the other samples of the batch (they "
                                     f"change by {change:.3g} when each sample is given alone): the loss is a sum "
                                     "over samples, so f must act on each sample by itself (no statistic of the "
                                     "batch; use running statistics, or a PyTorch module, which is measured on the "
                                     "whole batch)")
