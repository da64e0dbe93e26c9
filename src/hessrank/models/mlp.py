r"""Fully-connected networks as pure JAX functions over one flat parameter vector.

The network with widths :math:`(M_0 = d, M_1, \dots, M_{L-1}, M_L = K)` is

.. math::  f_\theta(x) = W_L\,\sigma(\cdots\sigma(W_1 x + b_1)\cdots) + b_L,

with :math:`W_l \in \mathbb{R}^{M_l \times M_{l-1}}` and the activation
:math:`\sigma` after every hidden layer (none after the last). Without bias the
:math:`b_l` are absent, not zero, so they do not count in ``p``.

One canonical flattening: layer by layer, ``W_l`` row-major, then ``b_l``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np

from ..config import ACTIVATIONS, INITS
from ..errors import ConfigError

_ACTIVATIONS = {
    "linear": lambda z: z,
    "relu": jax.nn.relu,
    "leaky_relu": lambda z: jax.nn.leaky_relu(z, negative_slope=0.01),
    "tanh": jnp.tanh,
    "elu": jax.nn.elu,
    "sigmoid": jax.nn.sigmoid,
}
assert set(_ACTIVATIONS) == set(ACTIVATIONS)

#: standard deviation of the (random, non-zero) initial biases, when ``bias=True``
BIAS_INIT_STD = 0.1


@dataclass(frozen=True)
class MLP:
    """A fully-connected network: ``widths = (d, M_1, ..., M_{L-1}, K)``."""

    widths: tuple[int, ...]
    activation: str = "linear"
    bias: bool = False

    def __post_init__(self):
        if self.activation not in _ACTIVATIONS:
            raise ConfigError.invalid("activation", self.activation, f"not one of {', '.join(ACTIVATIONS)}")
        if len(self.widths) < 2 or any(int(w) < 1 for w in self.widths):
            raise ConfigError.invalid("widths", self.widths, "need at least input and output, each >= 1")

    @property
    def depth(self) -> int:
        """``L``, the number of weight matrices."""
        return len(self.widths) - 1

    @cached_property
    def shapes(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """``(name, shape)`` of each parameter array in flattening order: ``W1, b1, W2, …``."""
        out = []
        for l, (m_in, m_out) in enumerate(zip(self.widths[:-1], self.widths[1:]), start=1):
            out.append((f"W{l}", (m_out, m_in)))
            if self.bias:
                out.append((f"b{l}", (m_out,)))
        return tuple(out)

    @property
    def leaves(self) -> tuple[tuple[str, int], ...]:
        """``(name, size)`` of each parameter array in flattening order: ``W1, b1, W2, …``."""
        return tuple((name, int(np.prod(shape))) for name, shape in self.shapes)

    def layer_of(self, leaf: str) -> str:
        """``layer<l>`` for ``W<l>`` and ``b<l>``: a layer's weight matrix and its bias."""
        return f"layer{leaf[1:]}"

    @property
    def num_params(self) -> int:
        """``p``, the number of parameters."""
        return int(sum(np.prod(s) for _, s in self.shapes))

    def unflatten(self, theta) -> dict:
        """Split the flat vector into named arrays ``W1, b1, W2, ...``."""
        params, start = {}, 0
        for name, shape in self.shapes:
            size = int(np.prod(shape))
            params[name] = theta[start:start + size].reshape(shape)
            start += size
        return params

    def apply(self, theta, X):
        """Outputs ``f_θ(X)`` of shape (n, K) for inputs ``X`` of shape (n, d)."""
        params = self.unflatten(theta)
        sigma = _ACTIVATIONS[self.activation]
        h = X
        for l in range(1, self.depth + 1):
            h = h @ params[f"W{l}"].T
            if self.bias:
                h = h + params[f"b{l}"]
            if l < self.depth:
                h = sigma(h)
        return h

    def init(self, *, seed: int = 1, scheme: str = "glorot") -> np.ndarray:
        """A random flat parameter vector (float64, NumPy's generator seeded by ``seed``).

        ``glorot``: W ~ N(0, 2 / (fan_in + fan_out)); ``uniform``: Glorot-uniform,
        W ~ U(-a, a) with a = sqrt(6 / (fan_in + fan_out)); ``orthogonal``: a Haar
        (semi-)orthogonal matrix. Biases, when present: N(0, BIAS_INIT_STD²).
        """
        if scheme not in INITS:
            raise ConfigError.invalid("scheme", scheme, f"not one of {', '.join(INITS)}")
        rng = np.random.default_rng(seed)
        pieces = []
        for name, shape in self.shapes:
            if name.startswith("b"):
                pieces.append(BIAS_INIT_STD * rng.standard_normal(shape))
                continue
            fan_out, fan_in = shape
            if scheme == "glorot":
                pieces.append(np.sqrt(2.0 / (fan_in + fan_out)) * rng.standard_normal(shape))
            elif scheme == "uniform":
                a = np.sqrt(6.0 / (fan_in + fan_out))
                pieces.append(rng.uniform(-a, a, size=shape))
            else:
                pieces.append(_haar_orthogonal(rng, shape))
        return np.concatenate([p.ravel() for p in pieces]).astype(np.float64)


def _haar_orthogonal(rng, shape) -> np.ndarray:
    """A Haar-distributed matrix with orthonormal rows or columns (QR with sign fix)."""
    rows, cols = shape
    big, small = max(rows, cols), min(rows, cols)
    Q, R = np.linalg.qr(rng.standard_normal((big, small)))
    Q = Q * np.sign(np.diag(R))  # makes the distribution exactly Haar
    return Q if rows >= cols else Q.T
