"""hessian_spectrum on any JAX model, whole matrices and diagonal blocks, against
numpy.linalg.eigvalsh / np.trace of jax.hessian on the flattened parameters (tests/reference.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import ref_pytree_matrices

import hessrank
from hessrank import ConfigError, hessian_spectrum
from hessrank.data import encode_targets


def _problem(loss, *, n=3, d=5, width=8, K=3, activation=jax.nn.relu, seed=0):
    """A two-layer network over dict params. With ReLU, no bias and n = 3 every matrix is of low
    rank (H_F's W1 block is 0), so a matrix-free sketch stops well short of p = 64."""
    rng = np.random.default_rng(seed)
    params = {"l1": {"w": rng.standard_normal((d, width)) / np.sqrt(d)},
              "l2": {"w": rng.standard_normal((width, K)) / np.sqrt(width)}}
    f = lambda P, X: activation(X @ P["l1"]["w"]) @ P["l2"]["w"]
    X = rng.standard_normal((n, d))
    Y = encode_targets(rng.integers(0, K, n), K) if loss == "cross" else rng.standard_normal((n, K))
    return f, params, X, Y


def _by_magnitude(lam):
    return lam[np.argsort(-np.abs(lam), kind="stable")]


def _assert_top_equal(got, H, k, rel, what, floor=0.0):
    """The k largest |λ| agree, and each value found is (signed) an eigenvalue of H: with ± pairs
    of equal magnitude (H_F of a ReLU network) the order within a pair is not defined."""
    lam = np.linalg.eigvalsh(H)
    ref = _by_magnitude(lam)[:k]
    got = np.asarray(got, dtype=np.float64)
    scale = rel * abs(ref[0]) + floor + 1e-300
    assert np.allclose(np.abs(got), np.abs(ref), rtol=rel, atol=scale), (what, got, ref)
    assert all(np.min(np.abs(lam - g)) <= scale + rel * abs(g) for g in got), (what, got, ref)
    return ref


def _reference(f, params, X, Y, loss):
    H_L, H_o, names, sizes = ref_pytree_matrices(f, params, X, Y, loss)
    return {"H_L": H_L, "H_o": H_o, "H_F": H_L - H_o}, names, sizes


@pytest.mark.parametrize("method,rel", [("dense", 1e-10), ("matrix-free", 1e-8)])
@pytest.mark.parametrize("loss", ["mse", "cross"])
def test_top_eigenvalues_and_trace_equal_eigvalsh_of_jax_hessian(method, rel, loss):
    f, params, X, Y = _problem(loss)
    res = hessian_spectrum(f, params, X, Y, loss=loss, top=6, method=method, probes=4, lanczos_steps=16)
    out = res.to_dict()
    mats, _, _ = _reference(f, params, X, Y, loss)
    assert out["method"] == method and out["p"] == 64
    # the reference H_F = H_L − H_o carries the rounding of that difference: trace scale Σ|diag H_L| + Σ|diag H_o|
    scale = np.abs(np.diag(mats["H_L"])).sum() + np.abs(np.diag(mats["H_o"])).sum()
    for name, H in mats.items():
        ref = _assert_top_equal(out[name]["top"], H, 6, rel, (method, name))
        tr, m = np.trace(H), out[name]
        if method == "dense" or m["trace_stderr"] is None:
            assert abs(m["trace"] - tr) <= 1e-12 * scale, (method, name, m["trace"], tr)
        else:
            assert abs(m["trace"] - tr) <= 3 * m["trace_stderr"] + 1e-9 * abs(ref[0]), (name, m["trace"], tr)
        assert m["rank"] == int(np.sum(np.abs(np.linalg.eigvalsh(H)) > m["tol"]))
        assert np.trapezoid(m["density"]["y"], m["density"]["x"]) == pytest.approx(1.0, abs=1e-6)
    if method == "matrix-free":   # the sketches stopped short of p: the Ritz path, not a complete basis
        assert out["H_L"]["top_bound"] > 0 and "sketch" in out["H_L"]["source"]


@pytest.mark.parametrize("method,activation", [("dense", jnp.tanh), ("matrix-free", jnp.tanh),
                                               ("matrix-free", jax.nn.relu)])
def test_block_top_eigenvalues_and_trace_equal_the_dense_sub_matrix(method, activation):
    # relu: the H_L block of l1/w has rank ≤ nK = 12 of 40, so its sketch stops short (Ritz values,
    # Hutchinson on the deflated restricted operator); tanh: full blocks, complete bases
    f, params, X, Y = _problem("mse", n=4, activation=activation)
    res = hessian_spectrum(f, params, X, Y, top=5, method=method, blocks="leaves", density=False)
    out = res.to_dict()
    mats, names, sizes = _reference(f, params, X, Y, "mse")
    scale = np.abs(np.diag(mats["H_L"])).sum() + np.abs(np.diag(mats["H_o"])).sum()
    starts = dict(zip(names, np.cumsum([0] + sizes[:-1])))
    assert list(out["blocks"]) == names == ["l1/w", "l2/w"]
    rel = 1e-10 if method == "dense" else 1e-8
    for leaf, size in zip(names, sizes):
        b, idx = out["blocks"][leaf], np.arange(starts[leaf], starts[leaf] + size)
        assert b["size"] == size and b["leaves"] == [leaf]
        for name, H in mats.items():
            sub = H[np.ix_(idx, idx)]
            m = b[name]
            # floor: the reference block of H_F = H_L − H_o holds that difference's rounding
            _assert_top_equal(m["top"], sub, 5, rel, (method, leaf, name), floor=1e-12 * out["H_L"]["top"][0])
            assert m["tol"] == out[name]["tol"]                 # counted at the whole matrix's tolerance
            assert m["rank"] == int(np.sum(np.abs(np.linalg.eigvalsh(sub)) > out[name]["tol"]))
            tr = np.trace(sub)
            assert abs(m["trace"] - tr) <= 3 * (m["trace_stderr"] or 0.0) + 1e-12 * scale, (method, leaf, name)
            assert m["density"] is None and isinstance(m["outliers"], int)
    # l2/w: f is linear in it, so its diagonal block of H_F is exactly 0
    assert out["blocks"]["l2/w"]["H_F"]["rank"] == 0 and out["blocks"]["l2/w"]["H_F"]["trace"] == 0.0
    if activation is jax.nn.relu:
        l1 = out["blocks"]["l1/w"]["H_L"]
        assert l1["rank"] <= 12 and l1["trace_stderr"] is not None and "sketch" in l1["source"]


def test_float32_params_with_x64_off_give_float64_results_and_leave_x64_off():
    f, params, X, Y = _problem("mse", activation=jnp.tanh)
    params32 = jax.tree_util.tree_map(lambda a: np.asarray(a, dtype=np.float32), params)
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    jax.config.update("jax_enable_x64", False)
    try:
        res = hessian_spectrum(f, params32, X32, Y32, top=6, blocks="layers", eigenvectors=True)
        out = res.to_dict()
        assert jax.config.jax_enable_x64 is False and jnp.ones(2).dtype == jnp.float32
    finally:
        jax.config.update("jax_enable_x64", True)
    # float64 arithmetic on the float32 values: agreement far below float32's 1e-7
    mats, _, _ = _reference(f, params32, X32.astype(np.float64), Y32.astype(np.float64), "mse")
    for name, H in mats.items():
        _assert_top_equal(out[name]["top"], H, 6, 1e-10, name)
        assert res.matrices[name].vectors.dtype == np.float64 and res.matrices[name].vectors.shape[1] == out["p"]


@pytest.mark.parametrize("f,params,match", [
    (lambda P, X: X @ P["w"], {"w": np.ones((5, 2))}, "outputs of shape"),
    (lambda P, X: jnp.log(X @ P["w"] - 100.0), {"w": np.ones((5, 3))}, "not finite"),
    (lambda P, X: X @ P["w"], {"w": np.ones((5, 3)), "name": "abc"}, "leaf is a str"),
    (lambda P, X: X @ P["v"], {"w": np.ones((5, 3))}, "raised KeyError"),
])
def test_bad_models_and_settings_are_refused_in_one_line(f, params, match):
    _, _, X, Y = _problem("mse")
    with pytest.raises(ConfigError, match=match) as err:
        hessian_spectrum(f, params, X, Y)
    assert "\n" not in str(err.value)


def test_bad_settings_name_the_parameter():
    f, params, X, Y = _problem("mse")
    for kw, match in ((dict(top=0), "top=0"), (dict(probes=0), "probes=0"), (dict(blocks="modules"), "blocks"),
                      (dict(method="fast"), "method='fast'"), (dict(lanczos=3), "lanczos=3")):
        with pytest.raises(ConfigError, match=match) as err:
            hessian_spectrum(f, params, X, Y, **kw)
        assert "\n" not in str(err.value)
    assert hessrank.hessian_spectrum is hessian_spectrum and "hessian_spectrum" in hessrank.__all__
