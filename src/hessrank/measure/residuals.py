r"""Where the linear formulas for H_F and H_L hold: the rank of the residual matrix Ω at θ.

For a linear network (with or without biases) every second derivative
:math:`\nabla^2_\theta f_k(x)` is linear in :math:`\tilde x = x` (or :math:`[x; 1]` with
biases), so :math:`H_F = \sum_i \sum_k g_{ik} \nabla^2_\theta f_k(x_i)`, :math:`g_i =
\partial\ell/\partial f(f_\theta(x_i), y_i)`, depends on the data only through the K×d̃ matrix

.. math::

    \Omega = \sum_i g_i \tilde x_i^\top .

The formulas assume Ω of its generic rank :math:`\min(\tilde r, K')` (a random
initialisation). At a least-squares minimum Ω = 0, hence :math:`H_F = 0` exactly and
:math:`H_L = H_o`; in between (Ω of lower rank, or too small to tell from rounding) the
formulas are not known to hold. :func:`residual_state` says which, from Ω's singular
values against the magnitude of its terms :math:`S = \sum_i \lVert g_i\rVert \lVert\tilde
x_i\rVert`: ``generic`` when the :math:`\min(\tilde r, K')`-th is above :data:`GENERIC_SHARE`
·S, ``zero`` when the largest is at the rounding of the sum (``n·eps`` times the magnitude
of the outputs, targets and inputs it is computed from), ``special`` otherwise.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..curvature import float64_scope
from ..linalg.rank import EPS

GENERIC = "generic"
ZERO = "zero"
SPECIAL = "special"
#: the smallest singular value Ω keeps at a generic point, relative to its terms' magnitude
GENERIC_SHARE = 1e-6


def residual_state(model, loss, theta, X, Y, *, bias: bool, generic_rank: int) -> str:
    """``generic``, ``zero`` or ``special`` (module docstring) for the network ``model`` at
    ``theta`` on the samples ``X, Y``: how Ω = Σ gᵢ x̃ᵢᵀ stands against its generic rank."""
    with float64_scope():
        X = jnp.asarray(X, dtype=jnp.float64)
        Y = jnp.asarray(Y, dtype=jnp.float64)
        F, G = _outputs_and_gradients(model, loss, jnp.asarray(theta, dtype=jnp.float64), X, Y)
        F, G, Y, X = (np.asarray(a, dtype=np.float64) for a in (F, G, Y, X))
    if bias:
        X = np.hstack([X, np.ones((X.shape[0], 1))])
    if not (np.isfinite(G).all() and np.isfinite(X).all()):
        return SPECIAL
    x_norm = np.linalg.norm(X, axis=1)
    terms = float(np.sum(np.linalg.norm(G, axis=1) * x_norm))
    rounding = X.shape[0] * EPS * float(
        np.sum((np.linalg.norm(F, axis=1) + np.linalg.norm(Y, axis=1) + np.linalg.norm(G, axis=1)) * x_norm))
    sv = np.linalg.svd(G.T @ X, compute_uv=False)
    largest = float(sv[0]) if sv.size else 0.0
    if largest <= rounding:
        return ZERO
    if 0 < generic_rank <= sv.size and float(sv[generic_rank - 1]) > GENERIC_SHARE * terms:
        return GENERIC
    return SPECIAL


@partial(jax.jit, static_argnums=(0, 1))
def _outputs_and_gradients(model, loss, theta, X, Y):
    # one compiled program: run op by op, the forward pass and the loss gradient compiled each
    # of their ~20 operations on its own shapes (most of a small run's time)
    F = model.apply(theta, X)
    return F, jax.vmap(loss.grad)(F, Y)
