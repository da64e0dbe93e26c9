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
