r"""Dense loss Hessian H_L, outer-product Hessian H_o and functional Hessian H_F.

For data :math:`(x_i, y_i)_{i=1}^n`, outputs :math:`f_i = f_\theta(x_i) \in \mathbb{R}^K`,
Jacobians :math:`J_i = \partial f_i / \partial\theta \in \mathbb{R}^{K\times p}`,
output Hessians :math:`\Lambda_i = \nabla^2_f \ell(f_i, y_i)` and output gradients
:math:`g_i = \nabla_f \ell(f_i, y_i)`:

.. math::

    H_L = \nabla^2_\theta \sum_i \ell(f_\theta(x_i), y_i), \qquad
    H_o = \sum_i J_i^\top \Lambda_i J_i, \qquad
    H_F = \sum_i \sum_k [g_i]_k \, \nabla^2_\theta [f_\theta(x_i)]_k ,

and :math:`H_L = H_o + H_F`. :math:`H_F` is computed as the Hessian of the single
scalar :math:`\theta' \mapsto \sum_i \langle g_i, f_{\theta'}(x_i)\rangle` with the
:math:`g_i` frozen at :math:`\theta` (no K-fold blow-up).

Everything is accumulated over batches of the data into p×p float64 NumPy arrays:
peak memory is the accumulators plus one batch's p×p contribution, never n·p².
A short final batch is padded with zero-weight samples so that one compiled
function serves every batch.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .losses import Loss
from .models import MLP

#: bytes of intermediate activations allowed per chunk of Hessian-vector products
_CHUNK_BYTES = 256 * 2**20


def loss_hessian(model: MLP, loss: Loss, theta, X, Y, *, batch_size: int | None = None) -> np.ndarray:
    """``H_L``, the p×p Hessian of the summed loss, accumulated over batches."""
    return hessians(model, loss, theta, X, Y, batch_size=batch_size, which=("H_L",))["H_L"]


def outer_product_hessian(model: MLP, loss: Loss, theta, X, Y, *, batch_size: int | None = None) -> np.ndarray:
    """``H_o = Σ_i J_iᵀ Λ_i J_i`` (the generalized Gauss–Newton matrix), p×p."""
    return hessians(model, loss, theta, X, Y, batch_size=batch_size, which=("H_o",))["H_o"]


def functional_hessian(model: MLP, loss: Loss, theta, X, Y, *, batch_size: int | None = None) -> np.ndarray:
    """``H_F = Σ_i Σ_k ∂ℓ/∂f_k · ∇²_θ f_k(x_i)``, p×p, computed on its own."""
    return hessians(model, loss, theta, X, Y, batch_size=batch_size, which=("H_F",))["H_F"]


def hessians(model: MLP, loss: Loss, theta, X, Y, *, batch_size: int | None = None,
             which=("H_L", "H_o", "H_F")) -> dict[str, np.ndarray]:
    """The requested dense matrices in one pass over the data, as ``{name: p×p array}``."""
    theta = jnp.asarray(theta, dtype=jnp.float64)
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    out = {}
    for _, out in running_hessians(model, loss, theta, X, Y, batch_size=batch_size, which=which):
        pass
    return out


def batches(X, Y, batch_size: int):
    """Yield ``(X_b, Y_b, w_b)``; the last batch is zero-padded with weight 0."""
    n = X.shape[0]
    for start in range(0, n, batch_size):
        Xb, Yb = X[start:start + batch_size], Y[start:start + batch_size]
        m = Xb.shape[0]
        w = np.ones(batch_size)
        if m < batch_size:
            pad = batch_size - m
            Xb = np.concatenate([Xb, np.zeros((pad, X.shape[1]))])
            Yb = np.concatenate([Yb, np.zeros((pad, Y.shape[1]))])
            w[m:] = 0.0
        yield Xb, Yb, w


def sample_outputs(model: MLP, loss: Loss, theta, X, Y):
    """Per-sample outputs ``f_i``, output gradients ``g_i`` and output Hessians ``Λ_i``."""
    F = model.apply(theta, X)
    G = jax.vmap(loss.grad)(F, Y)
    Lam = jax.vmap(loss.hessian)(F, Y)
    return F, G, Lam


def weighted_loss(model: MLP, loss: Loss, theta, X, Y, w):
    """``Σ_i w_i ℓ(f_θ(x_i), y_i)``."""
    F = model.apply(theta, X)
    return jnp.sum(w * jax.vmap(loss.value)(F, Y))


def dense_hessian(fun, theta, *, chunk: int):
    """The p×p Hessian of scalar ``fun`` at ``theta``: forward-over-reverse HVPs
    with the unit vectors, ``chunk`` of them vmapped at a time."""
    p = theta.shape[0]
    grad = jax.grad(fun)

    def column(i):
        e = jax.nn.one_hot(i, p, dtype=theta.dtype)
        return jax.jvp(grad, (theta,), (e,))[1]

    return jax.lax.map(column, jnp.arange(p), batch_size=min(chunk, p))


def _hvp_chunk(model: MLP, batch: int) -> int:
    # activations of one HVP: about 4 arrays of batch × (sum of widths) float64
    per_vector = 4 * 8 * batch * sum(model.widths)
    return max(1, _CHUNK_BYTES // per_vector)


@partial(jax.jit, static_argnums=(0, 1, 2))
def _batch_loss_hessian(model, loss, chunk, theta, X, Y, w):
    return dense_hessian(lambda t: weighted_loss(model, loss, t, X, Y, w), theta, chunk=chunk)


@partial(jax.jit, static_argnums=(0, 1, 2))
def _batch_functional_hessian(model, loss, chunk, theta, X, Y, w):
    _, G, _ = sample_outputs(model, loss, theta, X, Y)
    G = jax.lax.stop_gradient(w[:, None] * G)  # g_i frozen at θ
    return dense_hessian(lambda t: jnp.sum(G * model.apply(t, X)), theta, chunk=chunk)


@partial(jax.jit, static_argnums=(0, 1, 2))
def _batch_outer_product(model, loss, chunk, theta, X, Y, w):
    J = per_sample_jacobians(model, theta, X)             # (b, K, p)
    _, _, Lam = sample_outputs(model, loss, theta, X, Y)  # (b, K, K)
    LamJ = jnp.einsum("b,bkl,blp->bkp", w, Lam, J)        # w_i Λ_i J_i
    p = theta.shape[0]
    return J.reshape(-1, p).T @ LamJ.reshape(-1, p)       # Σ_i J_iᵀ (w_i Λ_i J_i)


def per_sample_jacobians(model: MLP, theta, X):
    """``J`` of shape (n, K, p): one reverse-mode Jacobian per sample."""
    def f_single(t, x):
        return model.apply(t, x[None, :])[0]

    return jax.vmap(jax.jacrev(f_single), in_axes=(None, 0))(theta, X)


def running_hessians(model: MLP, loss: Loss, theta, X, Y, *, batch_size: int | None = None,
                     which=("H_L", "H_o", "H_F")):
    """Yield ``(m, {name: matrix of the first m samples})`` after each batch.

    After the batch that ends at sample ``m`` the accumulators hold, e.g.,
    ``H_o(m) = Σ_{i≤m} J_iᵀ Λ_i J_i``: the matrices of the first ``m`` samples, built
    by adding one batch to the previous ones (never recomputed from scratch). The same
    arrays are yielded every time and updated in place by the next step, so copy what
    you keep, and never hand them to a destructive eigensolver.
    """
    theta = jnp.asarray(theta, dtype=jnp.float64)
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    p = theta.shape[0]
    n = X.shape[0]
    b = n if batch_size is None else int(batch_size)
    chunk = _hvp_chunk(model, b)
    out = {name: np.zeros((p, p)) for name in which}
    steps = {"H_L": _batch_loss_hessian, "H_o": _batch_outer_product, "H_F": _batch_functional_hessian}
    seen = 0
    for Xb, Yb, wb in batches(X, Y, b):
        for name in which:
            out[name] += np.asarray(steps[name](model, loss, chunk, theta, Xb, Yb, wb))
        seen = min(seen + b, n)
        yield seen, out
