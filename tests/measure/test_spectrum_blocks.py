"""Densities of the diagonal blocks of H_L, H_o, H_F (``hessian_spectrum(..., blocks=...)``)
against numpy.linalg.eigvalsh of the blocks of jax.hessian on the flattened parameters
(tests/reference.py)."""

import jax.numpy as jnp
import numpy as np
import pytest
from reference import ref_pytree_matrices

from hessrank import hessian_spectrum
from hessrank.linalg.spectral import lanczos_quadrature, slq_density


def _two_layers(activation, *, n=10, d=30, h=12, K=4, seed=0):
    """f(X) = act(X W1) W2 over dict params. Linear: the H_L and H_o blocks have rank
    ≤ nK = 40 (of 360 and 48), so a matrix-free block sketch stops short of the block and its
    density is SLQ on the restricted operator; each block of H_F is exactly 0."""
    rng = np.random.default_rng(seed)
    params = {"l1": {"w": rng.standard_normal((d, h)) / np.sqrt(d)},
              "l2": {"w": rng.standard_normal((h, K)) / np.sqrt(h)}}
    f = lambda P, X: activation(X @ P["l1"]["w"]) @ P["l2"]["w"]
    return f, params, rng.standard_normal((n, d)), rng.standard_normal((n, K))


def _blocks_of_reference(f, params, X, Y):
    """{leaf: {matrix: eigenvalues of its diagonal block}} of the dense reference matrices."""
    H_L, H_o, names, sizes = ref_pytree_matrices(f, params, X, Y, "mse")
    mats, out, start = {"H_L": H_L, "H_o": H_o, "H_F": H_L - H_o}, {}, 0
    for leaf, size in zip(names, sizes):
        idx = np.arange(start, start + size)
        start += size
        out[leaf] = {m: np.linalg.eigvalsh(H[np.ix_(idx, idx)]) for m, H in mats.items()}
    return out


def _moments(den):
    x, y = np.asarray(den["x"]), np.asarray(den["y"])
    return np.trapezoid(y, x), np.trapezoid(x * y, x), np.trapezoid(x * x * y, x)


# probes: a probe's estimate of Σλ²/s has relative standard deviation ≈ √(2Σλ⁴/(Σλ²)²) (0.35 and
# 0.38 for the linear network's l1/w and l2/w blocks of H_L); 512 probes put 5 % at ≥ 2.9 of them
@pytest.mark.parametrize("method,activation,probes", [("dense", jnp.tanh, 8), ("matrix-free", lambda z: z, 512)])
def test_block_density_integrates_to_one_and_has_the_moments_of_the_block(method, activation, probes):
    f, params, X, Y = _two_layers(activation)
    res = hessian_spectrum(f, params, X, Y, top=3, method=method, blocks="leaves", probes=probes, lanczos_steps=48)
    out = res.to_dict()
    ref = _blocks_of_reference(f, params, X, Y)
    methods = set()
    for leaf, b in out["blocks"].items():
        for name in ("H_L", "H_o", "H_F"):
            m, lam = b[name], ref[leaf][name]
            den = m["density"]
            mass, m1, m2 = _moments(den)
            assert mass == pytest.approx(1.0, abs=1e-6), (leaf, name)
            assert np.isclose(np.sum(den["weights"]), 1.0, atol=1e-12)
            methods.add(den["method"])
            if m["rank"] == 0:
                continue                                      # all mass at 0: the next test
            if den["probes"] is not None:                     # SLQ, as the whole matrix's
                lam2 = lam ** 2
                assert 2.5 * np.sqrt(2 * np.sum(lam2 ** 2) / np.sum(lam2) ** 2 / probes) <= 0.05
                assert den["probes"] == probes and den["lanczos_steps"] == min(48, b["size"])
            exact1, exact2 = lam.mean(), np.mean(lam ** 2)
            # the mean can be ~0 (H_F): within 5 % of the rms eigenvalue √(Σλ²/s)
            assert abs(m1 - exact1) <= 0.05 * np.sqrt(exact2), (method, leaf, name, m1, exact1)
            assert m2 == pytest.approx(exact2, rel=0.05), (method, leaf, name, m2, exact2)
    if method == "matrix-free":                       # the restricted operators' path was taken
        assert "stochastic Lanczos quadrature" in methods
    if method == "dense":
        assert "stochastic Lanczos quadrature" not in methods


@pytest.mark.parametrize("method", ["dense", "matrix-free"])
def test_a_linear_networks_functional_hessian_blocks_have_all_mass_at_zero(method):
    f, params, X, Y = _two_layers(lambda z: z, n=4, d=6, h=5, K=3)
    res = hessian_spectrum(f, params, X, Y, top=3, method=method, blocks="leaves", probes=4, lanczos_steps=8)
    out = res.to_dict()
    ref = _blocks_of_reference(f, params, X, Y)
    for leaf, b in out["blocks"].items():
        m = b["H_F"]
        assert np.all(np.abs(ref[leaf]["H_F"]) <= out["H_F"]["tol"]) and m["rank"] == 0   # the reference agrees
        den = m["density"]
        assert den["nodes"] == [0.0] and den["weights"] == [1.0] and "rank 0" in den["method"]
        mass, m1, m2 = _moments(den)
        assert np.isfinite(den["y"]).all() and mass == pytest.approx(1.0, abs=1e-6)
        assert abs(m1) <= 1e-9 * den["sigma"] and m2 == pytest.approx(den["sigma"] ** 2, rel=1e-6)
        assert b["H_L"]["density"]["nodes"] != [0.0]                         # the others are not


class _Zero:
    p = 7

    def __call__(self, V):
        return np.zeros_like(V)


def test_lanczos_quadrature_of_the_zero_matrix_puts_the_mass_at_zero():
    # the Krylov space of H = 0 is spanned by v alone: the recurrence breaks down at once
    nodes, weights = lanczos_quadrature(_Zero(), probes=3, steps=5)
    assert np.all(nodes == 0.0) and np.allclose(weights.sum(axis=1), 1.0)
    den = slq_density(_Zero(), probes=3, steps=20)
    assert den.lanczos_steps == 7 and np.isfinite(den.y).all()
    assert np.trapezoid(den.y, den.x) == pytest.approx(1.0, abs=1e-6)
