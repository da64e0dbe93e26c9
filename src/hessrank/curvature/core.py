r"""The pieces every curvature matrix is built from, written once.

For a batch of samples with weights :math:`w_i` (0 for padding):

* :func:`weighted_loss`: :math:`\sum_i w_i\,\ell(f_\theta(x_i), y_i)` — its Hessian is :math:`H_L`;
* :func:`functional_scalar`: :math:`\theta' \mapsto \sum_i \langle w_i g_i, f_{\theta'}(x_i)\rangle`
  with :math:`g_i = \nabla_f \ell(f_\theta(x_i), y_i)` frozen at :math:`\theta` — its Hessian is :math:`H_F`;
* :func:`sample_outputs`: :math:`f_i`, :math:`g_i`, :math:`\Lambda_i = \nabla_f^2 \ell`;
* :func:`per_sample_jacobians`: :math:`J_i = \partial f_i/\partial\theta` (K×p each), with
  :math:`H_o = \sum_i J_i^\top w_i\Lambda_i J_i`;
* :func:`batches`: fixed-size batches, the last one zero-padded with weight 0, so one
  compiled function serves every batch;
* :func:`as_float64`: the one prologue that turns θ, X, Y into float64 arrays;
  :func:`to_device`: a float64 NumPy array onto the JAX device;
  :func:`float64_scope` / :func:`in_float64`: the scoped float64 every entry point runs in
  (``jax.enable_x64`` as a context: the caller's JAX configuration is left as it was).

A model is anything with ``apply(θ, X)`` and ``num_params`` (:class:`hessrank.models.Model`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


def float64_scope():
    """A context in which JAX computes in float64; on exit the caller's setting is restored."""
    return jax.enable_x64(True)


def in_float64(fn):
    """``fn`` run inside :func:`float64_scope` (for public entry points; not for generators)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with float64_scope():
            return fn(*args, **kwargs)

    return wrapper


def as_float64(theta, X, Y):
    """``(θ, X, Y)`` as a float64 JAX vector and two float64 NumPy arrays."""
    if not isinstance(theta, jax.Array):
        theta = np.asarray(theta, dtype=np.float64)
    return to_device(theta), np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)


def to_device(a):
    """``a`` as a float64 JAX array; a NumPy array is copied (never aliased), so the caller
    may reuse its buffer. ``jax.device_put``, not ``jnp.asarray``: the latter compiles a
    copy program for every new shape (10–35 ms each, even with a warm compilation cache)
    and runs it at every call (1 ms for 64×4560, against 0.1 ms)."""
    if isinstance(a, jax.Array):
        return jnp.asarray(a, dtype=jnp.float64)
    return jax.device_put(np.asarray(a, dtype=np.float64), may_alias=False)


def batches(X, Y, batch_size: int):
    """Yield ``(X_b, Y_b, w_b)``; the last batch is zero-padded with weight 0."""
    n = X.shape[0]
    for start in range(0, n, batch_size):
        Xb, Yb = X[start:start + batch_size], Y[start:start + batch_size]
        m = Xb.shape[0]
        w = np.ones(batch_size)
        if m < batch_size:
            pad = batch_size - m
            Xb = np.concatenate([Xb, np.zeros((pad, *X.shape[1:]))])
            Yb = np.concatenate([Yb, np.zeros((pad, *Y.shape[1:]))])
            w[m:] = 0.0
        yield Xb, Yb, w


def sample_outputs(model, loss, theta, X, Y):
    """Per-sample outputs ``f_i``, output gradients ``g_i`` and output Hessians ``Λ_i``."""
    F = model.apply(theta, X)
    G = jax.vmap(loss.grad)(F, Y)
    Lam = jax.vmap(loss.hessian)(F, Y)
    return F, G, Lam


def weighted_loss(model, loss, theta, X, Y, w):
    """``Σ_i w_i ℓ(f_θ(x_i), y_i)``: the scalar whose Hessian is ``H_L``."""
    F = model.apply(theta, X)
    return jnp.sum(w * jax.vmap(loss.value)(F, Y))


def functional_scalar(model, loss, theta, X, Y, w):
    """``θ' ↦ Σ_i ⟨w_i g_i, f_θ'(x_i)⟩`` with ``g_i`` frozen at ``θ``: its Hessian at ``θ`` is ``H_F``."""
    _, G, _ = sample_outputs(model, loss, theta, X, Y)
    G = jax.lax.stop_gradient(w[:, None] * G)

    def scalar(t):
        return jnp.sum(G * model.apply(t, X))

    return scalar


def per_sample_jacobians(model, theta, X):
    """``J`` of shape (n, K, p): one reverse-mode Jacobian per sample."""
    def f_single(t, x):
        return model.apply(t, x[None])[0]

    return jax.vmap(jax.jacrev(f_single), in_axes=(None, 0))(theta, X)


def psd_sqrt(Lam):
    """Symmetric square root of a batch of symmetric positive semi-definite K×K matrices.

    Eigenvalues below zero (round-off of a singular Λ, e.g. softmax cross-entropy) are set to 0.
    """
    mu, U = jnp.linalg.eigh(Lam)
    return jnp.einsum("...ij,...j,...kj->...ik", U, jnp.sqrt(jnp.clip(mu, 0.0)), U)


def factor_rows(model, loss, theta, X, Y, w):
    """Rows ``(w_i Λ_i)^{1/2} J_i`` of the factor ``A`` with ``H_o = AᵀA``, shape (b·K, p)."""
    J = per_sample_jacobians(model, theta, X)                        # (b, K, p)
    _, _, Lam = sample_outputs(model, loss, theta, X, Y)
    S = psd_sqrt(Lam) * jnp.sqrt(w)[:, None, None]                   # (w_i Λ_i)^{1/2}
    A = jnp.einsum("ikl,ilp->ikp", S, J)
    return A.reshape(-1, theta.shape[0])


def activation_floats_per_sample(model, theta, X) -> int:
    """Floats of the intermediate arrays of ``model.apply`` per sample (the jaxpr's
    outputs for two samples minus those for one): the size of one sample's activations."""
    def count(m):  # NumPy zeros: a jnp.zeros of each shape would be compiled (tens of ms each)
        jaxpr = jax.make_jaxpr(model.apply)(theta, np.zeros((m, *X.shape[1:]), theta.dtype))
        return sum(int(np.prod(v.aval.shape)) for eqn in jaxpr.jaxpr.eqns for v in eqn.outvars)

    return max(1, count(2) - count(1))
