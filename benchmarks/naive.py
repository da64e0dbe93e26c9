"""The naive dense approach, the baseline of the speed benchmarks.

jax.hessian of the whole summed loss, the explicit generalized Gauss–Newton
matrix Σ JᵀΛJ from the full Jacobian, H_F = H_L − H_o, and SVD-based
``numpy.linalg.matrix_rank`` on all three. Uses hessrank only for the data, the
initial parameters and the loss definitions, so that both sides compute the same
matrices. Run as a script it prints one JSON object (ranks, seconds, peak memory).
"""

import argparse
import json
import resource
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import hessrank
from hessrank.measure import build


def naive_ranks(cfg: hessrank.RunConfig) -> dict:
    """Ranks of H_L, H_o, H_F the naive way, in float64."""
    # importing hessrank changes no JAX setting (since the any-model merge): without this the
    # baseline silently ran in float32 and its ranks came out wrong (2000 / 626 / 1499 at p = 4560)
    jax.config.update("jax_enable_x64", True)
    t0 = time.perf_counter()
    data, model, theta = build(cfg)
    loss = hessrank.get_loss(cfg.loss)
    X, Y, theta = jnp.asarray(data.X), jnp.asarray(data.Y), jnp.asarray(theta)

    def total_loss(t):
        return jnp.sum(jax.vmap(loss.value)(model.apply(t, X), Y))

    H_L = np.asarray(jax.hessian(total_loss)(theta))
    J = np.asarray(jax.jacobian(lambda t: model.apply(t, X))(theta))          # (n, K, p)
    Lam = np.asarray(jax.vmap(loss.hessian)(model.apply(theta, X), Y))       # (n, K, K)
    H_o = np.einsum("nkp,nkl,nlq->pq", J, Lam, J, optimize=True)
    H_F = H_L - H_o
    ranks = {name: int(np.linalg.matrix_rank(M)) for name, M in (("H_L", H_L), ("H_o", H_o), ("H_F", H_F))}
    return {"ranks": ranks, "p": int(theta.size), "seconds": time.perf_counter() - t0}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", default="gaussian")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--K", type=int, default=10)
    ap.add_argument("--units", default="40,40")
    ap.add_argument("--loss", default="mse")
    ap.add_argument("--activation", default="linear")
    a = ap.parse_args(argv)
    cfg = hessrank.RunConfig(dataset=a.dataset, n=a.n, dim=a.dim, K=a.K, units=hessrank.parse_units(a.units),
                             loss=a.loss, activation=a.activation).validate()
    out = naive_ranks(cfg)
    out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
