"""Small plain-function models over dicts of parameters, written for the tests of hessian_ranks."""

import jax
import jax.numpy as jnp
import numpy as np

ACT = {"linear": lambda z: z, "tanh": jnp.tanh, "relu": jax.nn.relu}


def residual_mlp(d, K, activation="tanh", bias=True, width=5, seed=0):
    """x -> h = σ(W1 x + b1); h + σ(W2 h + b2); W3 (·) + b3."""
    rng = np.random.default_rng(seed)
    P = {"in": {"w": rng.standard_normal((d, width)) / np.sqrt(d)},
         "res": {"w": rng.standard_normal((width, width)) / np.sqrt(width)},
         "out": {"w": rng.standard_normal((width, K)) / np.sqrt(width)}}
    if bias:
        for name, size in (("in", width), ("res", width), ("out", K)):
            P[name]["b"] = 0.1 * rng.standard_normal(size)
    act = ACT[activation]

    def f(P, X):
        h = act(X @ P["in"]["w"] + P["in"].get("b", 0.0))
        h = h + act(h @ P["res"]["w"] + P["res"].get("b", 0.0))
        return h @ P["out"]["w"] + P["out"].get("b", 0.0)

    return f, P


def conv1d_net(length, K, activation="tanh", bias=True, channels=2, kernel=3, seed=0):
    """X (n, length) as one channel -> conv (channels, kernel, valid) -> σ -> dense to K."""
    rng = np.random.default_rng(seed)
    out_len = length - kernel + 1
    P = {"conv": {"w": rng.standard_normal((channels, 1, kernel)) / np.sqrt(kernel)},
         "dense": {"w": rng.standard_normal((channels * out_len, K)) / np.sqrt(channels * out_len)}}
    if bias:
        P["conv"]["b"] = 0.1 * rng.standard_normal(channels)
        P["dense"]["b"] = 0.1 * rng.standard_normal(K)
    act = ACT[activation]

    def f(P, X):
        z = jax.lax.conv_general_dilated(X[:, None, :], P["conv"]["w"], (1,), "VALID",
                                         dimension_numbers=("NCH", "OIH", "NCH"))
        if "b" in P["conv"]:
            z = z + P["conv"]["b"][None, :, None]
        h = act(z).reshape(X.shape[0], -1)
        return h @ P["dense"]["w"] + P["dense"].get("b", 0.0)

    return f, P


def conv2d_net(side, K, activation="tanh", bias=True, channels=2, kernel=2, seed=0):
    """X (n, side²) as side×side images -> conv (channels, kernel×kernel, valid) -> σ -> dense to K."""
    rng = np.random.default_rng(seed)
    out = side - kernel + 1
    P = {"conv1": {"w": rng.standard_normal((channels, 1, kernel, kernel)) / kernel},
         "dense": {"w": rng.standard_normal((channels * out * out, K)) / np.sqrt(channels * out * out)}}
    if bias:
        P["conv1"]["b"] = 0.1 * rng.standard_normal(channels)
        P["dense"]["b"] = 0.1 * rng.standard_normal(K)
    act = ACT[activation]

    def f(P, X):
        img = X.reshape(X.shape[0], 1, side, side)
        z = jax.lax.conv_general_dilated(img, P["conv1"]["w"], (1, 1), "VALID",
                                         dimension_numbers=("NCHW", "OIHW", "NCHW"))
        if "b" in P["conv1"]:
            z = z + P["conv1"]["b"][None, :, None, None]
        h = act(z).reshape(X.shape[0], -1)
        return h @ P["dense"]["w"] + P["dense"].get("b", 0.0)

    return f, P
