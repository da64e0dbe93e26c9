r"""The built-in convolutional network, as a function over a dict of parameters.

Inputs of dimension :math:`d` are :math:`\sqrt d \times \sqrt d` single-channel images.
Conv layers ``channels:kernel`` (``conv1``, ``conv2``, …; weights :math:`C_{out}\times
C_{in}\times k\times k`, optional bias), the activation after each, optionally a 2×2
average pool after each (``pool="avg"``) or the average over all positions after the
last one (``pool="global"``, global average pooling), then one dense layer (``dense``)
from the flattened maps (with ``global``: one value per channel) to :math:`K`.
Initialisation: Glorot normal, :math:`\mathcal N(0, 2/(\mathrm{fan_{in}} + \mathrm{fan_{out}}))`
with fans :math:`C k^2`; biases :math:`\mathcal N(0,` ``BIAS_INIT_STD²``:math:`)`.
"""

from __future__ import annotations

import math

import numpy as np

from ..config import PADDINGS, POOLS, parse_conv
from ..errors import ConfigError


def cnn_geometry(d: int, conv, *, stride: int = 1, padding: str = "valid", pool: str = "none"):
    """``(conv layers, image side, conv sides, sides)`` of the built-in CNN on ``d = side²``
    pixels: each layer's output side before its pool and after it (``avg``: 2×2 after each
    layer; ``global``: one position after the last), or :class:`ConfigError`."""
    conv = parse_conv(conv) if isinstance(conv, str) else tuple(conv)
    side = math.isqrt(d)
    if side * side != d:
        raise ConfigError.invalid("dim", d, "a CNN needs square images: dim must be a perfect square (e.g. 64)")
    if padding not in PADDINGS:
        raise ConfigError.invalid("padding", padding, f"not one of {', '.join(PADDINGS)}")
    if pool not in POOLS:
        raise ConfigError.invalid("pool", pool, f"not one of {', '.join(POOLS)}")
    if stride < 1:
        raise ConfigError.invalid("stride", stride, "must be >= 1")
    conv_sides, sizes, size = [], [], side
    for l, (_, k) in enumerate(conv, start=1):
        conv_size = (size - k) // stride + 1 if padding == "valid" else -(-size // stride)
        size = conv_size // 2 if pool == "avg" else conv_size
        if size < 1:
            raise ConfigError.invalid("conv", ",".join(f"{a}:{b}" for a, b in conv),
                                      f"layer {l} leaves no pixels of the {side}×{side} images")
        conv_sides.append(conv_size)
        sizes.append(size)
    if pool == "global":
        sizes[-1] = 1
    return conv, side, conv_sides, sizes


def _checked(d: int, conv, stride: int, padding: str, pool: str):
    """``(conv layers, image side, side of each layer's output maps)``, or :class:`ConfigError`."""
    conv, side, _, sizes = cnn_geometry(d, conv, stride=stride, padding=padding, pool=pool)
    return conv, side, sizes


def cnn_num_params(d: int, K: int, conv, *, stride: int = 1, padding: str = "valid", pool: str = "none",
                   bias: bool = False) -> int:
    """``p`` of the CNN of :func:`build_cnn`, counted without making its parameters."""
    conv, _, sizes = _checked(d, conv, stride, padding, pool)
    p, c_in = 0, 1
    for c, k in conv:
        p += c * c_in * k * k + (c if bias else 0)
        c_in = c
    return p + c_in * sizes[-1] ** 2 * K + (K if bias else 0)


def build_cnn(d: int, K: int, conv, *, stride: int = 1, padding: str = "valid", pool: str = "none",
              activation: str = "relu", bias: bool = False, seed: int = 1):
    """``(f, params)`` of the CNN: ``f(params, X)`` for X of shape (n, d), outputs (n, K)."""
    import jax  # the network itself; its geometry and size above need no JAX

    from .mlp import _ACTIVATIONS, BIAS_INIT_STD

    conv, side, sizes = _checked(d, conv, stride, padding, pool)
    if activation not in _ACTIVATIONS:
        raise ConfigError.invalid("activation", activation, f"not one of {', '.join(_ACTIVATIONS)}")
    rng = np.random.default_rng(seed)
    params, c_in = {}, 1
    for l, (c, k) in enumerate(conv, start=1):
        std = math.sqrt(2.0 / ((c_in + c) * k * k))
        params[f"conv{l}"] = {"w": std * rng.standard_normal((c, c_in, k, k))}
        if bias:
            params[f"conv{l}"]["b"] = BIAS_INIT_STD * rng.standard_normal(c)
        c_in = c
    flat = c_in * sizes[-1] * sizes[-1]
    params["dense"] = {"w": math.sqrt(2.0 / (flat + K)) * rng.standard_normal((flat, K))}
    if bias:
        params["dense"]["b"] = BIAS_INIT_STD * rng.standard_normal(K)
    sigma = _ACTIVATIONS[activation]
    n_conv = len(conv)

    def f(P, X):
        h = X.reshape(X.shape[0], 1, side, side)
        for l in range(1, n_conv + 1):
            h = jax.lax.conv_general_dilated(h, P[f"conv{l}"]["w"], (stride, stride), padding.upper(),
                                             dimension_numbers=("NCHW", "OIHW", "NCHW"))
            if "b" in P[f"conv{l}"]:
                h = h + P[f"conv{l}"]["b"][None, :, None, None]
            h = sigma(h)
            if pool == "avg":
                h = jax.lax.reduce_window(h, 0.0, jax.lax.add, (1, 1, 2, 2), (1, 1, 2, 2), "VALID") / 4.0
        if pool == "global":
            h = h.mean(axis=(2, 3))
        h = h.reshape(X.shape[0], -1)
        out = h @ P["dense"]["w"]
        return out + P["dense"]["b"] if "b" in P["dense"] else out

    return f, params
