r"""What the curvature engine needs from a network, and how its parameters are named.

The engine (:mod:`hessrank.curvature`) sees a network only through :class:`Model`:
``apply(θ, X)`` on one flat float64 parameter vector :math:`\theta \in \mathbb{R}^p`
and ``num_params = p``. The built-in :class:`~hessrank.models.MLP` and a user's
function over a pytree (:class:`~hessrank.models.FunctionModel`) are two users of it.

Per-block ranks also need :class:`ParameterLayout`: the parameter arrays ("leaves") in
flattening order, each with a name and a size, and the layer each belongs to.
Models are static arguments of ``jax.jit``: they must be hashable (a frozen dataclass;
with ``eq=False`` it is hashed by identity, so one model object reuses its compiled code).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Model(Protocol):
    """A network as a pure function of one flat parameter vector."""

    @property
    def num_params(self) -> int:
        """``p``, the length of the flat parameter vector."""
        ...

    def apply(self, theta, X):
        """Outputs ``f_θ(X)`` of shape (b, K) for a batch ``X`` whose first axis has length b."""
        ...


@runtime_checkable
class ParameterLayout(Protocol):
    """Names and sizes of the parameter arrays of a :class:`Model`, in flattening order."""

    @property
    def leaves(self) -> tuple[tuple[str, int], ...]:
        """``(name, size)`` of each parameter array, in the order of the flat vector."""
        ...

    def layer_of(self, leaf: str) -> str:
        """The layer (module) the leaf named ``leaf`` belongs to."""
        ...


#: a change of the outputs beyond this fraction of the largest one means the model mixes the samples
MIX_TOLERANCE = 1e-9


def mixing_change(whole, parts) -> float | None:
    """How much a batch's outputs ``whole`` change when computed in ``parts`` (the same rows, some
    samples alone): the largest change when it exceeds :data:`MIX_TOLERANCE` of the largest output
    (rounding is ~1e-16 of it) or is not a number (a part alone gave NaN), else None."""
    whole, parts = np.asarray(whole), np.asarray(parts)
    change = float(np.max(np.abs(whole - parts)))
    return None if change <= MIX_TOLERANCE * float(np.max(np.abs(whole))) else change
