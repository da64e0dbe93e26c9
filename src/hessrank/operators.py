r"""Matrix-free H_L, H_o, H_F: products with blocks of vectors, and the factor of H_o.

Each operator maps a block of ``b`` vectors, stored as the rows of a (b, p) array
``V``, to the rows of :math:`V H` (all three matrices are symmetric), summed over
batches of the data. No p×p array is formed; memory is O(b·p) plus one batch's
activations.

* :math:`H_L v = \nabla_\theta \langle \nabla_\theta L(\theta), v\rangle`: forward-over-reverse,
  ``jax.linearize`` of ``jax.grad`` of the summed loss, applied to each row.
* :math:`H_F v`: the same with the scalar :math:`\sum_i \langle g_i, f_\theta(x_i)\rangle`,
  the output gradients :math:`g_i` frozen at :math:`\theta`.
* :math:`H_o v = \sum_i J_i^\top \Lambda_i J_i v`, as its three factors::

      v  ->  u_i = J_i v          (forward mode: one JVP of the network)
         ->  z_i = Λ_i u_i        (K×K per sample)
         ->  Σ_i J_iᵀ z_i         (reverse mode: the transposed JVP)

The factor :math:`A = \Lambda^{1/2} J \in \mathbb{R}^{nK\times p}` (rows
:math:`\Lambda_i^{1/2} J_i`, with the symmetric square root of the positive
semi-definite :math:`\Lambda_i` from a K×K ``eigh``) gives :math:`H_o = A^\top A`, so
the non-zero eigenvalues of :math:`H_o` are those of the nK×nK Gram matrix
:math:`A A^\top` — far cheaper when nK < p.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .curvature import batches, per_sample_jacobians, sample_outputs, weighted_loss
from .losses import Loss
from .models import MLP

#: rows of ``V`` pushed through one compiled call (a short last block is zero-padded)
ROWS_PER_CALL = 64
#: rows vmapped together inside one call; on CPU the products of one vector are already
#: matrix-matrix products over the data batch, and wider vmaps were measured slower
ROWS_VMAPPED = 4


@dataclass(frozen=True)
class CurvatureOperator:
    """A symmetric p×p matrix known only through ``matmat``: (b, p) rows ``V`` -> rows of ``V H``."""

    name: str
    p: int
    matmat: Callable[[np.ndarray], np.ndarray]

    def __call__(self, V) -> np.ndarray:
        return self.matmat(V)


def loss_hessian_operator(model: MLP, loss: Loss, theta, X, Y, *, batch_size: int | None = None) -> CurvatureOperator:
    """``H_L`` as an operator: rows ``v`` -> ``H_L v`` by forward-over-reverse HVPs."""
    return _operator("H_L", model, loss, theta, X, Y, batch_size)


def functional_hessian_operator(model: MLP, loss: Loss, theta, X, Y, *,
                                batch_size: int | None = None) -> CurvatureOperator:
    """``H_F`` as an operator: HVPs of ``Σ_i ⟨g_i, f_θ(x_i)⟩`` with ``g_i`` frozen at ``θ``."""
    return _operator("H_F", model, loss, theta, X, Y, batch_size)


def outer_product_operator(model: MLP, loss: Loss, theta, X, Y, *,
                           batch_size: int | None = None) -> CurvatureOperator:
    """``H_o = Σ_i J_iᵀ Λ_i J_i`` as an operator: ``v -> Jv -> ΛJv -> JᵀΛJv``."""
    return _operator("H_o", model, loss, theta, X, Y, batch_size)


def outer_product_factor(model: MLP, loss: Loss, theta, X, Y, *, batch_size: int | None = None) -> np.ndarray:
    """``A = Λ^{1/2} J``, shape (nK, p), rows ``Λ_i^{1/2} J_i`` sample by sample: ``H_o = AᵀA``."""
    theta = jnp.asarray(theta, dtype=jnp.float64)
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    n, K, p = X.shape[0], Y.shape[1], theta.shape[0]
    b = n if batch_size is None else int(batch_size)
    A = np.empty((n * K, p))
    for start, (Xb, Yb, wb) in zip(range(0, n, b), batches(X, Y, b)):
        m = min(b, n - start)
        rows = np.asarray(_factor_rows(model, loss, theta, Xb, Yb, wb))  # (b·K, p), padded rows zero
        A[start * K:(start + m) * K] = rows[:m * K]
    return A


def psd_sqrt(Lam):
    """Symmetric square root of a batch of symmetric positive semi-definite K×K matrices.

    Eigenvalues below zero (round-off of a singular Λ, e.g. softmax cross-entropy) are set to 0.
    """
    mu, U = jnp.linalg.eigh(Lam)
    return jnp.einsum("...ij,...j,...kj->...ik", U, jnp.sqrt(jnp.clip(mu, 0.0)), U)


# --------------------------------------------------------------------------- #
def _operator(name, model, loss, theta, X, Y, batch_size) -> CurvatureOperator:
    theta = jnp.asarray(theta, dtype=jnp.float64)
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    n = X.shape[0]
    b = n if batch_size is None else int(batch_size)
    data = [tuple(jnp.asarray(a) for a in batch) for batch in batches(X, Y, b)]
    p = int(theta.shape[0])

    def matmat(V) -> np.ndarray:
        V = np.asarray(V, dtype=np.float64)
        if V.ndim != 2 or V.shape[1] != p:
            raise ValueError(f"{name} operator: rows must have length p = {p}, got shape {V.shape}")
        out = np.empty_like(V)
        for lo in range(0, V.shape[0], ROWS_PER_CALL):
            chunk = V[lo:lo + ROWS_PER_CALL]
            m = chunk.shape[0]
            if m < ROWS_PER_CALL:  # one compiled shape for every call
                chunk = np.concatenate([chunk, np.zeros((ROWS_PER_CALL - m, p))])
            chunk = jnp.asarray(chunk)
            acc = None
            for Xb, Yb, wb in data:
                part = _apply_rows(model, loss, name, theta, Xb, Yb, wb, chunk)
                acc = part if acc is None else acc + part
            out[lo:lo + m] = np.asarray(acc)[:m]
        return out

    return CurvatureOperator(name=name, p=p, matmat=matmat)


@partial(jax.jit, static_argnums=(0, 1, 2))
def _apply_rows(model, loss, name, theta, X, Y, w, V):
    """Rows of ``V H`` for one data batch, ``H`` one of H_L, H_F, H_o."""
    if name == "H_o":
        _, jvp = jax.linearize(lambda t: model.apply(t, X), theta)   # v -> J v, (b, K)
        vjp = jax.linear_transpose(jvp, theta)                       # z -> Jᵀ z
        _, _, Lam = sample_outputs(model, loss, theta, X, Y)
        WLam = w[:, None, None] * Lam                                # w_i Λ_i

        def product(v):
            u = jvp(v)                                               # J v
            z = jnp.einsum("ikl,il->ik", WLam, u)                    # Λ J v
            return vjp(z)[0]                                         # Jᵀ Λ J v
    else:
        if name == "H_L":
            def scalar(t):
                return weighted_loss(model, loss, t, X, Y, w)
        else:  # H_F: Hessian of Σ_i ⟨w_i g_i, f_θ(x_i)⟩ with g_i frozen at θ
            _, G, _ = sample_outputs(model, loss, theta, X, Y)
            G = jax.lax.stop_gradient(w[:, None] * G)

            def scalar(t):
                return jnp.sum(G * model.apply(t, X))
        _, product = jax.linearize(jax.grad(scalar), theta)         # v -> H v
    return jax.lax.map(product, V, batch_size=ROWS_VMAPPED)


@partial(jax.jit, static_argnums=(0, 1))
def _factor_rows(model, loss, theta, X, Y, w):
    J = per_sample_jacobians(model, theta, X)                        # (b, K, p)
    _, _, Lam = sample_outputs(model, loss, theta, X, Y)
    S = psd_sqrt(Lam) * jnp.sqrt(w)[:, None, None]                   # (w_i Λ_i)^{1/2}
    A = jnp.einsum("ikl,ilp->ikp", S, J)
    return A.reshape(-1, theta.shape[0])
