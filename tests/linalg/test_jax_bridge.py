"""jax_matvec: the NumPy operator enters JAX bit for bit, with x64 off outside the scope (the
vectors cross the callback as uint32 pairs, so a callback thread without the scope loses nothing)."""

import jax
import jax.numpy as jnp
import numpy as np

from hessrank.curvature import float64_scope
from hessrank.linalg.spectral import jax_matvec


class _Explicit:
    def __init__(self, H):
        self.H, self.p = H, H.shape[0]

    def __call__(self, V):
        return V @ self.H


def test_products_are_bitwise_the_numpy_ones_and_x64_stays_off():
    rng = np.random.default_rng(0)
    H = rng.standard_normal((9, 9))
    H = H + H.T
    V = rng.standard_normal((4, 9)) * 10.0 ** rng.integers(-150, 150, (4, 9))   # beyond float32's range
    jax.config.update("jax_enable_x64", False)
    try:
        with float64_scope():
            mv = jax_matvec(_Explicit(H))
            one = np.asarray(jax.jit(mv)(jnp.asarray(V[0])))
            many = np.asarray(jax.jit(jax.vmap(mv))(jnp.asarray(V)))
        assert jax.config.jax_enable_x64 is False
    finally:
        jax.config.update("jax_enable_x64", True)
    assert one.dtype == many.dtype == np.float64
    assert np.array_equal(one, V[0] @ H) and np.array_equal(many, V @ H)
