import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

# hessrank no longer switches JAX to float64 on import; the tests' own references
# (jax.hessian, jax.jacobian in reference.py) need it, so the suite enables it here.
# tests/test_any_model.py checks the library with it switched off.
jax.config.update("jax_enable_x64", True)

import hessrank  # noqa: E402,F401
