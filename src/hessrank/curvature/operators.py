r"""Matrix-free H_L, H_o, H_F: products with blocks of vectors.

Each operator maps a block of ``b`` vectors, stored as the rows of a (b, p) array
``V``, to the rows of :math:`V H` (all three matrices are symmetric), summed over
batches of the data. No p×p array is formed; memory is O(b·p) plus one batch's
activations.

The operators run in float64 whatever the caller's JAX setting (each product enters
:func:`~hessrank.curvature.core.float64_scope`).

* :math:`H_L v = \nabla_\theta \langle \nabla_\theta L(\theta), v\rangle`: forward-over-reverse,
  ``jax.linearize`` of ``jax.grad`` of the summed loss, applied to each row.
* :math:`H_F v`: the same with the scalar :math:`\sum_i \langle g_i, f_\theta(x_i)\rangle`,
  the output gradients :math:`g_i` frozen at :math:`\theta`.
* :math:`H_o v = \sum_i J_i^\top \Lambda_i J_i v`, as its three factors::

      v  ->  u_i = J_i v          (forward mode: one JVP of the network)
         ->  z_i = Λ_i u_i        (K×K per sample)
         ->  Σ_i J_iᵀ z_i         (reverse mode: the transposed JVP)

All three are sums over the samples. Given several ``devices``, an operator splits the
samples into one contiguous share per device (placed there once, each share batched and
zero-padded with weight 0 to a common shape), replicates θ and each block of rows, lets
every device sum its share's products, and adds the devices' parts with one all-reduce
(``jax.shard_map`` over a data axis, ``psum``): :math:`V H = \sum_d V H^{(d)}`. Without
(or with one device) the data lives on the default device and one program sums all batches.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from ..models import Loss, Model
from .core import (
    as_float64,
    batches,
    float64_scope,
    functional_scalar,
    sample_outputs,
    to_device,
    weighted_loss,
)
from .interface import CurvatureOperator, batch_rows

#: rows of ``V`` pushed through one compiled call on an accelerator (a short last block is
#: zero-padded, so one compiled shape serves every call)
ROWS_PER_CALL = 64
#: on CPU, a call takes as many rows as fit in this many floats (1 MiB), at least
#: ROWS_VMAPPED: there small calls are faster, not slower. One vector's products are already
#: matrix-matrix products over the data batch, and a few rows' tangents stay in cache where
#: 64 rows' did not (benchmarks/bench_products.py); a short block (one vector) also costs a
#: few products instead of 64.
CPU_CALL_FLOATS = 2**17
#: rows vmapped together inside one call (wider vmaps were measured slower on CPU)
ROWS_VMAPPED = 4


def loss_hessian_operator(model: Model, loss: Loss, theta, X, Y, *, batch_size: int | None = None,
                          devices=None) -> CurvatureOperator:
    """``H_L`` as an operator: rows ``v`` -> ``H_L v`` by forward-over-reverse HVPs; ``devices`` (JAX
    devices): split the samples over them, one share each, the parts summed (module docstring)."""
    return _operator("H_L", _loss_hessian_rows, model, loss, theta, X, Y, batch_size, devices)


def functional_hessian_operator(model: Model, loss: Loss, theta, X, Y, *,
                                batch_size: int | None = None, devices=None) -> CurvatureOperator:
    """``H_F`` as an operator: HVPs of ``Σ_i ⟨g_i, f_θ(x_i)⟩`` with ``g_i`` frozen at ``θ``."""
    return _operator("H_F", _functional_hessian_rows, model, loss, theta, X, Y, batch_size, devices)


def outer_product_operator(model: Model, loss: Loss, theta, X, Y, *,
                           batch_size: int | None = None, devices=None) -> CurvatureOperator:
    """``H_o = Σ_i J_iᵀ Λ_i J_i`` as an operator: ``v -> Jv -> ΛJv -> JᵀΛJv``."""
    return _operator("H_o", _outer_product_rows, model, loss, theta, X, Y, batch_size, devices)


# --------------------------------------------------------------------------- #
def _operator(name, rows, model, loss, theta, X, Y, batch_size, devices=None) -> CurvatureOperator:
    """Rows ``Σ_b rows(model, loss, θ, X_b, Y_b, w_b, V)`` over the data batches, a few rows of ``V`` per
    call; with several ``devices`` each sums its own share of the samples and the parts are added (one
    device: the process's default device, as without)."""
    devices = tuple(devices or ())
    with float64_scope():
        theta, X, Y = as_float64(theta, X, Y)
        b = batch_rows(X.shape[0], batch_size)
        if len(devices) > 1:
            product, data = _split_over_devices(rows, model, loss, theta, X, Y, b, devices)
        else:
            # the batches stacked, (batches, b, ...): one call sums over all of them
            data = tuple(to_device(np.stack(a)) for a in zip(*batches(X, Y, b)))

            def product(chunk):
                return _summed_over_batches(rows, model, loss, theta, *data, to_device(chunk))
    p = int(theta.shape[0])
    rows_per_call = _rows_per_call(p)

    def matmat(V, out=None) -> np.ndarray:
        V = np.asarray(V, dtype=np.float64)
        if V.ndim != 2 or V.shape[1] != p:
            raise ValueError(f"{name} operator: rows must have length p = {p}, got shape {V.shape}")
        if out is None:
            out = np.empty_like(V)
        elif out.shape != V.shape or out.dtype != np.float64:
            raise ValueError(f"{name} operator: out must be float64 of shape {V.shape}, got {out.dtype} {out.shape}")
        with float64_scope():  # called later, outside the builder's scope
            return _matmat(V, out)

    def _matmat(V, out) -> np.ndarray:
        pending = None
        for lo in range(0, V.shape[0], rows_per_call):
            chunk = V[lo:lo + rows_per_call]
            m = chunk.shape[0]
            if m < rows_per_call:  # one compiled shape for every call
                chunk = np.concatenate([chunk, np.zeros((rows_per_call - m, p))])
            # dispatched before the previous block is copied out: the copy overlaps this call
            running = product(chunk)
            if pending is not None:
                _copy_rows(out, *pending)
            pending = (lo, m, running)
        if pending is not None:
            _copy_rows(out, *pending)
        return out

    return CurvatureOperator(name=name, p=p, matmat=matmat, matmat_into=matmat, data=data)


#: the axis of a product's mesh over which the samples are split
SAMPLES = "samples"


def _split_over_devices(rows, model, loss, theta, X, Y, b: int, devices: tuple):
    """``(product, data)`` on several devices: device ``d`` holds the samples
    ``[d n/N, (d+1) n/N)`` (batched by at most ``b``, zero-padded with weight 0 to the longest share),
    θ and the rows are replicated, and ``product(V)`` is the all-reduced sum of the devices' parts."""
    n, count = X.shape[0], len(devices)
    cuts = [d * n // count for d in range(count + 1)]
    share = max(cuts[d + 1] - cuts[d] for d in range(count))
    b = max(1, min(b, share))
    per_batches = -(-share // b)

    def stacked(lo, hi):
        """One device's share as (batches, b, ...) with weights: its :func:`batches`, then batches of
        padding (weight 0) up to the longest share's count; an empty share is all padding."""
        share = list(batches(X[lo:hi], Y[lo:hi], b))
        padding = (np.zeros((b, *X.shape[1:])), np.zeros((b, *Y.shape[1:])), np.zeros(b))
        share += [padding] * (per_batches - len(share))
        return tuple(np.stack(a) for a in zip(*share))

    shares = [stacked(cuts[d], cuts[d + 1]) for d in range(count)]
    mesh = Mesh(np.array(devices), (SAMPLES,))
    split, replicated = NamedSharding(mesh, P(SAMPLES)), NamedSharding(mesh, P())
    data = tuple(jax.make_array_from_single_device_arrays(
        (count, *shares[0][i].shape), split,
        [jax.device_put(shares[d][i][None], dev, may_alias=False) for d, dev in enumerate(devices)])
        for i in range(3))
    theta = jax.device_put(theta, replicated)

    def product(chunk):
        return _summed_over_devices(rows, model, loss, mesh, theta, *data, jax.device_put(chunk, replicated))

    return product, data


def _rows_per_call(p: int) -> int:
    """Rows of ``V`` per compiled call: ROWS_PER_CALL, or on CPU a multiple of ROWS_VMAPPED
    with at most CPU_CALL_FLOATS floats (never fewer than ROWS_VMAPPED rows)."""
    if jax.default_backend() != "cpu":
        return ROWS_PER_CALL
    rows = min(ROWS_PER_CALL, CPU_CALL_FLOATS // p)
    return max(ROWS_VMAPPED, rows - rows % ROWS_VMAPPED)


def _copy_rows(out, lo, m, rows) -> None:
    """``out[lo:lo + m] = rows[:m]`` (waits for ``rows``)."""
    out[lo:lo + m] = np.asarray(rows)[:m]


@partial(jax.jit, static_argnums=(0, 1, 2))
def _summed_over_batches(rows, model, loss, theta, Xs, Ys, ws, V):
    """``Σ_b rows(model, loss, θ, X_b, Y_b, w_b, V)`` over the stacked batches ``Xs, Ys, ws``."""
    def add_batch(acc, batch):
        return acc + rows(model, loss, theta, *batch, V), None

    total, _ = jax.lax.scan(add_batch, jnp.zeros_like(V), (Xs, Ys, ws))
    return total


@partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _summed_over_devices(rows, model, loss, mesh, theta, Xs, Ys, ws, V):
    """``Σ_d Σ_b rows(model, loss, θ, X_db, Y_db, w_db, V)``: each device of ``mesh`` sums its own batches
    ``Xs[d], Ys[d], ws[d]``, then one all-reduce adds the devices' parts (replicated)."""
    def local(theta, Xs, Ys, ws, V):
        # θ and V as each device's own values: derivatives with respect to a replicated θ would be
        # summed over the devices inside the product already; here each device's part is its own
        theta, V = (jax.lax.pcast(a, (SAMPLES,), to="varying") for a in (theta, V))

        def add_batch(acc, batch):
            return acc + rows(model, loss, theta, *batch, V), None

        part, _ = jax.lax.scan(add_batch, jnp.zeros_like(V), (Xs[0], Ys[0], ws[0]))
        return jax.lax.psum(part, SAMPLES)

    return jax.shard_map(local, mesh=mesh, in_specs=(P(), P(SAMPLES), P(SAMPLES), P(SAMPLES), P()),
                         out_specs=P())(theta, Xs, Ys, ws, V)


def _hessian_rows(scalar, theta, V):
    """Rows ``H v`` for each row ``v`` of ``V``, ``H`` the Hessian of ``scalar`` at ``θ``."""
    _, product = jax.linearize(jax.grad(scalar), theta)              # v -> H v
    return jax.lax.map(product, V, batch_size=ROWS_VMAPPED)


def _loss_hessian_rows(model, loss, theta, X, Y, w, V):
    return _hessian_rows(lambda t: weighted_loss(model, loss, t, X, Y, w), theta, V)


def _functional_hessian_rows(model, loss, theta, X, Y, w, V):
    return _hessian_rows(functional_scalar(model, loss, theta, X, Y, w), theta, V)


def _outer_product_rows(model, loss, theta, X, Y, w, V):
    _, jvp = jax.linearize(lambda t: model.apply(t, X), theta)       # v -> J v, (b, K)
    vjp = jax.linear_transpose(jvp, theta)                           # z -> Jᵀ z
    _, _, Lam = sample_outputs(model, loss, theta, X, Y)
    WLam = w[:, None, None] * Lam                                    # w_i Λ_i

    def product(v):
        u = jvp(v)                                                   # J v
        z = jnp.einsum("ikl,il->ik", WLam, u)                        # Λ J v
        return vjp(z)[0]                                             # Jᵀ Λ J v

    return jax.lax.map(product, V, batch_size=ROWS_VMAPPED)
