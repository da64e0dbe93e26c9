r"""The per-sample losses, each with its output gradient and output Hessian Λ.

For one sample with output :math:`f \in \mathbb{R}^K` and target :math:`y`:

* ``mse``:   :math:`\ell = \tfrac12\lVert f-y\rVert^2`, :math:`\nabla_f\ell = f-y`, :math:`\Lambda = I`.
* ``cross``: :math:`\ell = (\textstyle\sum_k y_k)\,\mathrm{lse}(f) - \langle y, f\rangle`
  (softmax cross-entropy), :math:`\nabla_f\ell = (\sum y)\,s - y`,
  :math:`\Lambda = (\sum y)(\mathrm{diag}(s) - s s^\top)`, :math:`s = \mathrm{softmax}(f)`.
* ``cosh``:  :math:`\ell = \sum_k \log\cosh(f_k-y_k)`, :math:`\nabla_f\ell = \tanh(f-y)`,
  :math:`\Lambda = \mathrm{diag}(\mathrm{sech}^2(f-y))`.

This module is the one place where the losses are defined.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from ..config import LOSSES, check_loss


@dataclass(frozen=True)
class Loss:
    """A per-sample loss ``value(f, y)`` with ``grad`` = ∂ℓ/∂f and ``hessian`` = Λ."""

    name: str
    value: Callable
    grad: Callable
    hessian: Callable


def _logcosh(z):
    # log cosh z = |z| + log1p(exp(-2|z|)) - log 2, stable for large |z|
    a = jnp.abs(z)
    return a + jnp.log1p(jnp.exp(-2.0 * a)) - jnp.log(2.0)


def _cross_value(f, y):
    return jnp.sum(y) * jax.nn.logsumexp(f) - jnp.dot(y, f)


def _cross_grad(f, y):
    return jnp.sum(y) * jax.nn.softmax(f) - y


def _cross_hessian(f, y):
    s = jax.nn.softmax(f)
    return jnp.sum(y) * (jnp.diag(s) - jnp.outer(s, s))


_LOSSES = {
    "mse": Loss(
        "mse",
        value=lambda f, y: 0.5 * jnp.sum((f - y) ** 2),
        grad=lambda f, y: f - y,
        hessian=lambda f, y: jnp.eye(f.shape[-1], dtype=f.dtype),
    ),
    "cross": Loss("cross", value=_cross_value, grad=_cross_grad, hessian=_cross_hessian),
    "cosh": Loss(
        "cosh",
        value=lambda f, y: jnp.sum(_logcosh(f - y)),
        grad=lambda f, y: jnp.tanh(f - y),
        hessian=lambda f, y: jnp.diag(1.0 - jnp.tanh(f - y) ** 2),
    ),
}
assert set(_LOSSES) == set(LOSSES)


def get_loss(name: str) -> Loss:
    """The :class:`Loss` called ``name`` (``mse``, ``cross`` or ``cosh``)."""
    return _LOSSES[check_loss(name)]
