"""Shared set-up: CPU-only JAX in float64, and one small problem factory for every test."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# the command line keeps compiled programs in the user's cache folder by default; the suite and its
# many subprocesses keep theirs in a folder of their own, removed at the end (tests of the cache give
# their own folder). A program compiled once is read back wherever it recurs: in a later test module
# (each module ends by dropping JAX's in-memory programs), in another subprocess, or where only the
# Python function around it is new (a closure, a model object of the same shapes)
_CACHE = tempfile.mkdtemp(prefix="hessrank-tests-jax-cache-")
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
os.environ["HESSRANK_COMPILE_CACHE"] = _CACHE

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

# hessrank no longer switches JAX to float64 on import; the tests' own references
# (jax.hessian, jax.jacobian in reference.py) need it, so the suite enables it here.
# tests/test_any_model.py checks the library with it switched off.
jax.config.update("jax_enable_x64", True)

from hessrank.compile_cache import enable_compile_cache  # noqa: E402
from hessrank.data import encode_targets  # noqa: E402
from hessrank.models import MLP, get_loss  # noqa: E402

enable_compile_cache(_CACHE)


def make_problem(activation, loss, bias, seed=0, n=7, d=4, units=(3, 5), K=3):
    """``(model, loss, θ, X, Y)``: Gaussian inputs, one-hot targets of random classes, a
    random initialisation of an MLP with hidden ``units``."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = encode_targets(rng.integers(0, K, n), K)
    model = MLP(widths=(d, *units, K), activation=activation, bias=bias)
    return model, get_loss(loss), model.init(seed=seed + 1), X, Y


@pytest.fixture
def problem():
    """The factory :func:`make_problem`: ``problem(activation, loss, bias, seed=…, n=…, …)``."""
    return make_problem


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test module: the suite compiles thousands of
    Hessian programs in one process, and keeping them all grows its memory maps without
    bound (a late test once crashed inside XLA's compiler)."""
    yield
    jax.clear_caches()
