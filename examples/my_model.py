"""An example model for `hessian-rank run --model examples/my_model.py:build`.

build(d, K, seed) returns (f, params): f(params, X) -> outputs (n, K) for inputs X (n, d),
params any pytree of float arrays. Here: a small residual MLP with biases over a dict.

    hessian-rank run --model examples/my_model.py:build --dataset gaussian --n 30 --dim 6 --K 3 --blocks layers

The same from Python, with per-block ranks:

    import hessrank
    f, params = build(6, 3, 1)
    result = hessrank.hessian_ranks(f, params, X, Y, loss="mse", blocks="layers")
    result.ranks["H_o"].rank, result.blocks["res"].ranks["H_F"].rank, result.to_dict()
"""

import jax.numpy as jnp
import numpy as np


def build(d, K, seed, width=8):
    """A residual tanh MLP d -> width -> (+ residual) -> K: returns (f, params)."""
    rng = np.random.default_rng(seed)
    params = {
        "inp": {"w": rng.standard_normal((d, width)) / np.sqrt(d), "b": np.zeros(width)},
        "res": {"w": rng.standard_normal((width, width)) / np.sqrt(width), "b": 0.1 * rng.standard_normal(width)},
        "out": {"w": rng.standard_normal((width, K)) / np.sqrt(width)},
    }

    def f(P, X):
        h = jnp.tanh(X @ P["inp"]["w"] + P["inp"]["b"])
        h = h + jnp.tanh(h @ P["res"]["w"] + P["res"]["b"])
        return h @ P["out"]["w"]

    return f, params
