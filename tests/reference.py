"""Slow, obvious references the tests compare the library against.

Nothing here imports hessrank's curvature code: the network forward pass and the
losses are written out again by hand, and the Hessians come from ``jax.hessian``
and explicit Jacobians.
"""

import jax
import jax.numpy as jnp
import numpy as np

ACT = {
    "linear": lambda z: z,
    "relu": lambda z: jnp.maximum(z, 0.0),
    "leaky_relu": lambda z: jnp.where(z >= 0, z, 0.01 * z),
    "tanh": jnp.tanh,
    "elu": lambda z: jnp.where(z > 0, z, jnp.expm1(jnp.minimum(z, 0.0))),
    "sigmoid": lambda z: 1.0 / (1.0 + jnp.exp(-z)),
}


def forward(theta, X, widths, activation, bias):
    """f(X) with W_l of shape (M_l, M_{l-1}) stored row-major, then b_l."""
    h, start = X, 0
    L = len(widths) - 1
    for l in range(L):
        m_in, m_out = widths[l], widths[l + 1]
        W = theta[start:start + m_in * m_out].reshape(m_out, m_in)
        start += m_in * m_out
        h = h @ W.T
        if bias:
            h = h + theta[start:start + m_out]
            start += m_out
        if l < L - 1:
            h = ACT[activation](h)
    assert start == theta.shape[0]
    return h


def loss_sum(F, Y, loss):
    if loss == "mse":
        return 0.5 * jnp.sum((F - Y) ** 2)
    if loss == "cross":
        logp = F - jnp.log(jnp.sum(jnp.exp(F), axis=1, keepdims=True))
        return -jnp.sum(Y * logp)
    if loss == "cosh":
        return jnp.sum(jnp.log(jnp.cosh(F - Y)))
    raise ValueError(loss)


def ref_loss_hessian(theta, X, Y, widths, activation, bias, loss):
    f = lambda t: loss_sum(forward(t, X, widths, activation, bias), Y, loss)
    return np.asarray(jax.hessian(f)(jnp.asarray(theta)))


def ref_outer_product(theta, X, Y, widths, activation, bias, loss):
    """Σ_i J_iᵀ Λ_i J_i with J from jax.jacobian and Λ_i from jax.hessian of the loss in f."""
    theta = jnp.asarray(theta)
    F = forward(theta, X, widths, activation, bias)
    J = jax.jacobian(lambda t: forward(t, X, widths, activation, bias))(theta)  # (n, K, p)
    H = np.zeros((theta.size, theta.size))
    for i in range(X.shape[0]):
        Lam = jax.hessian(lambda f: loss_sum(f[None, :], Y[i:i + 1], loss))(F[i])
        H += np.asarray(J[i].T @ Lam @ J[i])
    return H


# ------------------------------------------------- any model: f(params, X) over a pytree
def ref_pytree_matrices(f, params, X, Y, loss):
    """(H_L, H_o, leaf names, leaf sizes) of f on the flattened float64 parameters: H_L from
    jax.hessian of the summed loss, H_o = Σ_i J_iᵀ Λ_i J_i from jax.jacobian and each sample's
    Λ_i = jax.hessian of the loss in f; H_F = H_L − H_o. Each is jitted once: op by op, the
    transformations of a Flax or Equinox model dispatch thousands of small operations."""
    from jax.flatten_util import ravel_pytree

    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype=jnp.float64), params)
    theta, unravel = ravel_pytree(params)
    X = jnp.asarray(X, dtype=jnp.float64)
    Y = jnp.asarray(Y, dtype=jnp.float64)
    F = lambda t: f(unravel(t), X)
    H_L = np.asarray(jax.jit(jax.hessian(lambda t: loss_sum(F(t), Y, loss)))(theta))
    J = np.asarray(jax.jit(jax.jacobian(F))(theta))                          # (n, K, p)
    sample_loss = lambda g, y: loss_sum(g[None, :], y[None, :], loss)
    Lam = np.asarray(jax.jit(jax.vmap(jax.hessian(sample_loss)))(F(theta), Y))   # (n, K, K)
    H_o = np.zeros_like(H_L)
    for i in range(X.shape[0]):
        H_o += J[i].T @ Lam[i] @ J[i]
    paths = jax.tree_util.tree_flatten_with_path(params)[0]
    names = [jax.tree_util.keystr(k, simple=True, separator="/") for k, _ in paths]
    sizes = [int(np.size(a)) for _, a in paths]
    return H_L, H_o, names, sizes


def count_above(H, tol):
    """Eigenvalues of the symmetric H with |λ| > tol (numpy's matrix_rank rule with a given tol)."""
    return int(np.sum(np.abs(np.linalg.eigvalsh(H)) > tol))


def default_tol(H):
    """NumPy's matrix_rank tolerance: max|λ| · p · eps."""
    return float(np.max(np.abs(np.linalg.eigvalsh(H)))) * H.shape[0] * np.finfo(np.float64).eps
