"""Shared pieces of the public-API tests: one tiny configuration and one tiny model."""

import jax.numpy as jnp
import numpy as np
import pytest

from hessrank import RunConfig

#: the tiny configuration every test of ``run`` / ``spectrum`` measures (p = 18)
TINY = dict(dataset="gaussian", n=10, dim=4, units=(3,), K=2)
#: the same as command-line flags
TINY_FLAGS = ["--dataset", "gaussian", "--n", "10", "--dim", "4", "--units", "3", "--K", "2", "--no-compile-cache"]


@pytest.fixture
def tiny_flags():
    """:data:`TINY` as ``hessian-rank run`` flags."""
    return list(TINY_FLAGS)


@pytest.fixture(scope="module")
def tiny_config():
    """A :class:`RunConfig` of p = 18 on 10 Gaussian samples."""
    return RunConfig(**TINY)


def tanh_net(d=3, hidden=4, K=3, seed=0):
    """``(f, params)``: a one-hidden-layer tanh network with biases, as a plain JAX function."""
    rng = np.random.default_rng(seed)
    params = {"l1": {"w": rng.standard_normal((d, hidden)) / np.sqrt(d), "b": 0.1 * rng.standard_normal(hidden)},
              "l2": {"w": rng.standard_normal((hidden, K)) / np.sqrt(hidden), "b": 0.1 * rng.standard_normal(K)}}

    def f(P, X):
        return jnp.tanh(X @ P["l1"]["w"] + P["l1"]["b"]) @ P["l2"]["w"] + P["l2"]["b"]

    return f, params


@pytest.fixture
def net():
    """The factory :func:`tanh_net`."""
    return tanh_net


@pytest.fixture
def samples():
    """``samples(n, d, K, seed=…)``: Gaussian inputs (n, d) and integer labels (n,) covering 0..K-1."""
    def make(n, d, K, seed=1):
        rng = np.random.default_rng(seed)
        labels = np.arange(n) % K
        rng.shuffle(labels)
        return rng.standard_normal((n, d)), labels
    return make
