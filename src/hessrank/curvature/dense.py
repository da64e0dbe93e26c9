r"""Dense loss Hessian H_L, outer-product Hessian H_o and functional Hessian H_F.

For data :math:`(x_i, y_i)_{i=1}^n`, outputs :math:`f_i = f_\theta(x_i) \in \mathbb{R}^K`,
Jacobians :math:`J_i = \partial f_i / \partial\theta \in \mathbb{R}^{K\times p}`,
output Hessians :math:`\Lambda_i = \nabla^2_f \ell(f_i, y_i)` and output gradients
:math:`g_i = \nabla_f \ell(f_i, y_i)`:

.. math::

    H_L = \nabla^2_\theta \sum_i \ell(f_\theta(x_i), y_i), \qquad
    H_o = \sum_i J_i^\top \Lambda_i J_i, \qquad
    H_F = \sum_i \sum_k [g_i]_k \, \nabla^2_\theta [f_\theta(x_i)]_k ,

and :math:`H_L = H_o + H_F`, which is how :math:`H_L` is formed. :math:`H_F` is computed
as the Hessian of the single scalar :math:`\theta' \mapsto \sum_i \langle g_i,
f_{\theta'}(x_i)\rangle` with the :math:`g_i` frozen at :math:`\theta` (no K-fold blow-up).

The factor :math:`A = \Lambda^{1/2} J` (nK×p, :func:`outer_product_factor`; every loss has
:math:`\Lambda_i \succeq 0`) gives :math:`H_o = A^\top A`, whose non-zero eigenvalues are
those of the nK×nK Gram matrix :math:`A A^\top`.

Two compiled programs per batch shape, the Hessian of the scalar above and the rows of
:math:`A` — the two the matrix-free route compiles too — build all three matrices: at the
small sizes where dense is chosen, compiling is most of a run's time, and a third program
(the Hessian of the loss itself) was 40–55 % of the compilation (``benchmarks/bench_auto.py``).

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

from ..models import Loss, Model
from .core import (
    activation_floats_per_sample,
    as_float64,
    batches,
    factor_rows,
    float64_scope,
    functional_scalar,
    in_float64,
)
from .interface import batch_rows

#: bytes of intermediate activations allowed per chunk of Hessian-vector products
_CHUNK_BYTES = 256 * 2**20
MATRICES = ("H_L", "H_o", "H_F")


@in_float64
def loss_hessian(model: Model, loss: Loss, theta, X, Y, *, batch_size: int | None = None) -> np.ndarray:
    """``H_L = H_o + H_F``, the p×p Hessian of the summed loss, accumulated over batches."""
    return hessians(model, loss, theta, X, Y, batch_size=batch_size, which=("H_L",))["H_L"]


@in_float64
def outer_product_hessian(model: Model, loss: Loss, theta, X, Y, *, batch_size: int | None = None) -> np.ndarray:
    """``H_o = Σ_i J_iᵀ Λ_i J_i = AᵀA`` (the generalized Gauss–Newton matrix), p×p."""
    return hessians(model, loss, theta, X, Y, batch_size=batch_size, which=("H_o",))["H_o"]


@in_float64
def functional_hessian(model: Model, loss: Loss, theta, X, Y, *, batch_size: int | None = None) -> np.ndarray:
    """``H_F = Σ_i Σ_k ∂ℓ/∂f_k · ∇²_θ f_k(x_i)``, p×p, computed on its own."""
    return hessians(model, loss, theta, X, Y, batch_size=batch_size, which=("H_F",))["H_F"]


@in_float64
def hessians(model: Model, loss: Loss, theta, X, Y, *, batch_size: int | None = None,
             which=MATRICES) -> dict[str, np.ndarray]:
    """The requested dense matrices in one pass over the data, as ``{name: p×p array}``."""
    out = {}
    for _, mats in running_hessians(model, loss, theta, X, Y, batch_size=batch_size, which=which):
        out = mats
    return out


@in_float64
def outer_product_factor(model: Model, loss: Loss, theta, X, Y, *, batch_size: int | None = None) -> np.ndarray:
    """``A = Λ^{1/2} J``, shape (nK, p), rows ``Λ_i^{1/2} J_i`` sample by sample: ``H_o = AᵀA``."""
    theta, X, Y = as_float64(theta, X, Y)
    n, K, p = X.shape[0], Y.shape[1], theta.shape[0]
    b = batch_rows(n, batch_size)
    A = np.empty((n * K, p))
    for start, (Xb, Yb, wb) in zip(range(0, n, b), batches(X, Y, b)):
        m = min(b, n - start)
        rows = np.asarray(_factor_rows(model, loss, theta, Xb, Yb, wb))  # (b·K, p), padded rows zero
        A[start * K:(start + m) * K] = rows[:m * K]
    return A


def dense_hessian(fun, theta, *, chunk: int):
    """The p×p Hessian of scalar ``fun`` at ``theta``: forward-over-reverse HVPs
    with the unit vectors, ``chunk`` of them vmapped at a time."""
    p = theta.shape[0]
    grad = jax.grad(fun)

    def column(i):
        e = jax.nn.one_hot(i, p, dtype=theta.dtype)
        return jax.jvp(grad, (theta,), (e,))[1]

    return jax.lax.map(column, jnp.arange(p), batch_size=min(chunk, p))


def _hvp_chunk(model: Model, theta, X, batch: int) -> int:
    # activations of one HVP: the forward pass's intermediates and their tangents and cotangents
    per_vector = 3 * 8 * batch * activation_floats_per_sample(model, theta, X)
    return max(1, _CHUNK_BYTES // per_vector)


@partial(jax.jit, static_argnums=(0, 1, 2))
def _batch_functional_hessian(model, loss, chunk, theta, X, Y, w):
    return dense_hessian(functional_scalar(model, loss, theta, X, Y, w), theta, chunk=chunk)


_factor_rows = jax.jit(factor_rows, static_argnums=(0, 1))


def running_hessians(model: Model, loss: Loss, theta, X, Y, *, batch_size: int | None = None,
                     which=MATRICES):
    """Yield ``(m, {name: matrix of the first m samples})`` after each batch.

    After the batch that ends at sample ``m`` the accumulators hold, e.g.,
    ``H_o(m) = Σ_{i≤m} J_iᵀ Λ_i J_i``: the matrices of the first ``m`` samples, built
    by adding one batch to the previous ones (never recomputed from scratch). The same
    arrays are yielded every time and updated in place by the next step, so copy what
    you keep, and never hand them to a destructive eigensolver.
    """
    # float64 only around the work, never across a yield: the caller's code runs in its own setting
    with float64_scope():
        theta, X, Y = as_float64(theta, X, Y)
        p = theta.shape[0]
        n = X.shape[0]
        b = batch_rows(n, batch_size)
        chunk = _hvp_chunk(model, theta, X, b)
    out = {name: np.zeros((p, p)) for name in which}
    seen = 0
    for Xb, Yb, wb in batches(X, Y, b):
        with float64_scope():
            # H_L = H_F + H_o, batch by batch; one p×p batch contribution alive at a time
            if "H_F" in which or "H_L" in which:
                _add(out, ("H_F", "H_L"), np.asarray(_batch_functional_hessian(model, loss, chunk, theta, Xb, Yb, wb)))
            if "H_o" in which or "H_L" in which:
                A = np.asarray(_factor_rows(model, loss, theta, Xb, Yb, wb))  # (b·K, p), padded rows zero
                _add(out, ("H_o", "H_L"), A.T @ A)                         # Σ_i J_iᵀ (w_i Λ_i) J_i, symmetric
        seen = min(seen + b, n)
        yield seen, out


def _add(out: dict[str, np.ndarray], names, part: np.ndarray) -> None:
    """Add ``part`` to each accumulator of ``names`` that ``out`` holds."""
    for name in names:
        if name in out:
            out[name] += part
