"""hessian_ranks on any JAX model: ranks and per-block ranks against jax.hessian and explicit Σ JᵀΛJ
(tests/reference.py), scoped float64, block naming, bad models refused in one line."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from models_zoo import conv1d_net, conv2d_net, residual_mlp
from reference import count_above, default_tol, ref_pytree_matrices

import hessrank
from hessrank import MLP, ConfigError, RunConfig, hessian_ranks, run
from hessrank.data import encode_targets


def _data(n, d, K, loss, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = encode_targets(rng.integers(0, K, n), K) if loss == "cross" else rng.standard_normal((n, K))
    return X, Y


def _check_against_reference(f, params, X, Y, loss, method, blocks="leaves"):
    H_L, H_o, names, sizes = ref_pytree_matrices(f, params, X, Y, loss)
    res = hessian_ranks(f, params, X, Y, loss=loss, method=method, blocks=blocks)
    whole = {"H_L": H_L, "H_o": H_o, "H_F": H_L - H_o}
    tols = {}
    for m, H in whole.items():
        tols[m] = default_tol(H)
        assert res.ranks[m].rank == count_above(H, tols[m]), (m, method)
    starts = dict(zip(names, np.cumsum([0] + sizes[:-1])))
    size_of = dict(zip(names, sizes))
    for name, blk in res.blocks.items():
        idx = np.concatenate([np.arange(starts[l], starts[l] + size_of[l]) for l in blk.leaves])
        assert blk.size == idx.size
        for m, H in whole.items():
            # the block is counted at the whole matrix's tolerance
            assert blk.ranks[m].rank == count_above(H[np.ix_(idx, idx)], tols[m]), (name, m, method)
    return res


BATTERY = [
    (residual_mlp, dict(d=4, K=3, activation="tanh", bias=True), "mse"),
    (residual_mlp, dict(d=4, K=3, activation="relu", bias=False), "cross"),
    (conv1d_net, dict(length=7, K=3, activation="linear", bias=False), "cosh"),
    (conv1d_net, dict(length=7, K=3, activation="tanh", bias=True), "cross"),
    (conv2d_net, dict(side=4, K=2, activation="relu", bias=True), "mse"),
    (conv2d_net, dict(side=4, K=3, activation="linear", bias=True), "mse"),
]


@pytest.mark.parametrize("make,kw,loss", BATTERY)
def test_ranks_and_block_ranks_equal_reference_dense(make, kw, loss):
    f, params = make(**kw)
    d = kw.get("d", kw.get("length", kw.get("side", 0) ** 2))
    X, Y = _data(9, d, kw["K"], loss)
    res = _check_against_reference(f, params, X, Y, loss, "dense")
    assert res.method == "dense"


@pytest.mark.parametrize("make,kw,loss", [BATTERY[0], BATTERY[3], BATTERY[5]])
def test_ranks_and_block_ranks_equal_reference_matrix_free(make, kw, loss):
    f, params = make(**kw)
    d = kw.get("d", kw.get("length", kw.get("side", 0) ** 2))
    X, Y = _data(9, d, kw["K"], loss)
    res = _check_against_reference(f, params, X, Y, loss, "matrix-free", blocks="layers")
    assert res.method == "matrix-free" and not res.uncertified
    assert set(res.blocks) == {"in": {"in", "res", "out"}, "conv": {"conv", "dense"},
                               "conv1": {"conv1", "dense"}}[next(iter(params))]


def test_linear_network_sanity_facts_dense_and_matrix_free():
    # f linear in each weight matrix alone: every diagonal block of H_F is zero, so H_L's equals H_o's
    rng = np.random.default_rng(0)
    params = {"l1": {"w": rng.standard_normal((6, 4))}, "l2": {"w": rng.standard_normal((4, 5))},
              "l3": {"w": rng.standard_normal((5, 3))}}
    f = lambda P, X: X @ P["l1"]["w"] @ P["l2"]["w"] @ P["l3"]["w"]
    X, Y = _data(8, 6, 3, "mse")
    for method in ("dense", "matrix-free"):
        res = hessian_ranks(f, params, X, Y, method=method, blocks="layers")
        assert sum(b.ranks["H_o"].rank for b in res.blocks.values()) >= res.ranks["H_o"].rank
        for name, b in res.blocks.items():
            assert b.ranks["H_F"].rank == 0, (method, name)
            assert b.ranks["H_L"].rank == b.ranks["H_o"].rank > 0, (method, name)


def test_float32_params_with_x64_off_give_the_float64_ranks_and_leave_x64_off():
    f, params = residual_mlp(4, 3, activation="tanh", bias=True)
    X, Y = _data(9, 4, 3, "mse")
    ref = hessian_ranks(f, params, X, Y)
    params32 = jax.tree_util.tree_map(lambda a: np.asarray(a, dtype=np.float32), params)
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    jax.config.update("jax_enable_x64", False)
    try:
        res = hessian_ranks(f, params32, X32, Y32, blocks="layers", method="matrix-free")
        assert jax.config.jax_enable_x64 is False
        op = hessrank.loss_hessian_operator(MLP((4, 3, 2)), hessrank.get_loss("mse"), np.ones(18), X, Y[:, :2])
        assert jax.config.jax_enable_x64 is False
        assert op(np.eye(18)).dtype == np.float64           # called later, outside any scope
        assert jax.config.jax_enable_x64 is False
        assert jnp.ones(2).dtype == jnp.float32
    finally:
        jax.config.update("jax_enable_x64", True)
    # the promoted float32 values differ from the float64 ones, the rank structure does not
    ref32 = hessian_ranks(f, params32, X32, Y32)
    assert {m: r.rank for m, r in res.ranks.items()} == {m: r.rank for m, r in ref32.ranks.items()}
    assert ref.ranks["H_o"].rank == res.ranks["H_o"].rank


def test_importing_hessrank_leaves_jax_config_alone():
    import subprocess
    import sys
    code = "import jax, hessrank; print(jax.config.jax_enable_x64)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "JAX_PLATFORMS": "cpu"})
    assert out.stdout.strip() == "False"


def test_builtin_mlp_through_the_api_equals_run():
    for activation, loss, bias in (("linear", "mse", False), ("tanh", "cross", True), ("relu", "cosh", False)):
        cfg = RunConfig(dataset="gaussian", n=12, dim=5, units=(4, 3), K=3, activation=activation, loss=loss,
                        bias=bias, method="dense")
        want = run(cfg, blocks="layers")
        data, model, theta = hessrank.measure.build(cfg)
        got = hessian_ranks(lambda t, X: model.apply(t, X), theta, data.X, data.Y, loss=loss, method="dense")
        assert {m: r.rank for m, r in got.ranks.items()} == {m: r.rank for m, r in want.ranks.items()}
        for m in got.ranks:
            assert got.ranks[m].tol == pytest.approx(want.ranks[m].tol, rel=1e-9)
        assert list(want.blocks) == ["layer1", "layer2", "layer3"]
        assert want.to_dict()["blocks"]["layer1"]["size"] == 5 * 4 + (4 if bias else 0)


def test_block_names_and_shapes_of_to_dict():
    f, params = conv2d_net(4, 2, bias=True)
    X, Y = _data(5, 16, 2, "mse")
    out = hessian_ranks(f, params, X, Y, blocks="leaves").to_dict()
    assert list(out["blocks"]) == ["conv1/b", "conv1/w", "dense/b", "dense/w"]
    assert out["blocks"]["conv1/w"]["size"] == 8
    assert set(out["blocks"]["dense/w"]) >= {"size", "ranks", "tolerance", "gap_decades"}
    assert set(out["ranks"]) == {"H_L", "H_o", "H_F"} and out["p"] == 2 + 8 + 2 + 18 * 2
    assert out["predictions"]["H_o"] == min(out["p"], 5 * 2) and out["predictions"]["kind"] == "bound"
    custom = hessian_ranks(f, params, X, Y, blocks={"conv": ["conv1/w", "conv1/b"]}).to_dict()["blocks"]
    assert custom["conv"]["size"] == 10


def test_equinox_module():
    eqx = pytest.importorskip("equinox")
    model = eqx.nn.MLP(in_size=4, out_size=3, width_size=5, depth=1, activation=jnp.tanh,
                       key=jax.random.PRNGKey(0))
    params, static = eqx.partition(model, eqx.is_array)
    f = lambda p, X: jax.vmap(eqx.combine(p, static))(X)
    X, Y = _data(7, 4, 3, "cross")
    res = _check_against_reference(f, params, X, Y, "cross", "dense", blocks="leaves")
    assert list(res.blocks) == ["layers/0/weight", "layers/0/bias", "layers/1/weight", "layers/1/bias"]
    res = _check_against_reference(f, params, X, Y, "cross", "matrix-free", blocks="layers")
    assert list(res.blocks) == ["0", "1"]          # the shared "layers/" prefix is skipped


def test_flax_linen_module():
    nn = pytest.importorskip("flax.linen")

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(3)(nn.relu(nn.Dense(5)(x)))

    net = Net()
    variables = net.init(jax.random.PRNGKey(1), jnp.ones((1, 4)))
    X, Y = _data(7, 4, 3, "mse")
    res = _check_against_reference(net.apply, variables, X, Y, "mse", "dense", blocks="layers")
    assert list(res.blocks) == ["Dense_0", "Dense_1"]


def test_flax_nnx_module():
    nnx = pytest.importorskip("flax.nnx")

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.hidden = nnx.Linear(4, 5, rngs=rngs)
            self.out = nnx.Linear(5, 3, use_bias=False, rngs=rngs)

        def __call__(self, x):
            return self.out(jnp.tanh(self.hidden(x)))

    graphdef, state = nnx.split(Net(nnx.Rngs(2)))     # the state: a pytree of parameter arrays
    f = lambda s, X: nnx.merge(graphdef, s)(X)
    X, Y = _data(7, 4, 3, "cross")
    res = _check_against_reference(f, state, X, Y, "cross", "dense", blocks="leaves")
    assert sorted(res.blocks) == ["hidden/bias/value", "hidden/kernel/value", "out/kernel/value"]
    assert res.p == 4 * 5 + 5 + 5 * 3
    res = _check_against_reference(f, state, X, Y, "cross", "matrix-free", blocks="layers")
    assert sorted(res.blocks) == ["hidden", "out"]


@pytest.mark.parametrize("f,params,match", [
    (lambda P, X: X @ P["w"], {"w": np.ones((4, 2))}, "outputs of shape"),            # K = 2, targets have 3
    (lambda P, X: (X @ P["w"])[:, 0], {"w": np.ones((4, 3))}, "outputs of shape"),
    (lambda P, X: jnp.log(X @ P["w"] - 100.0), {"w": np.ones((4, 3))}, "not finite"),
    (lambda P, X: X @ P["w"], {"w": np.ones((4, 3)), "name": "abc"}, "leaf is a str"),
    (lambda P, X: X @ P["w"], {"w": np.ones((4, 3), dtype=np.int32)}, "int32 array"),
    (lambda P, X: X @ P["v"], {"w": np.ones((4, 3))}, "raised KeyError"),
    # a statistic of the batch: each sample's output depends on the others (the loss is a sum over samples)
    (lambda P, X: (X - X.mean(0)) @ P["w"], {"w": np.ones((4, 3))}, "depend on the other samples of the batch"),
    (lambda P, X: X @ P["w"] / jnp.std(X[:, :1]), {"w": np.ones((4, 3))}, "raised|depend on the other samples"),
])
def test_bad_models_are_refused_in_one_line(f, params, match):
    X, Y = _data(5, 4, 3, "mse")
    with pytest.raises(ConfigError, match=match) as err:
        hessian_ranks(f, params, X, Y)
    assert "\n" not in str(err.value)


def test_bad_blocks_and_arguments():
    f, params = residual_mlp(4, 3)
    X, Y = _data(5, 4, 3, "mse")
    for kw, match in ((dict(blocks="modules"), "blocks='modules'"), (dict(blocks={"a": ["in/x"]}), "in/x"),
                      (dict(method="fast"), "method='fast'"), (dict(batch_size=9), "batch_size=9"),
                      (dict(loss="l1"), "loss='l1'")):
        with pytest.raises(ConfigError, match=match):
            hessian_ranks(f, params, X, Y, **kw)


def test_non_finite_or_non_numeric_data_names_the_array_and_the_place():
    f, params = residual_mlp(4, 3)
    X, Y = _data(5, 4, 3, "mse")
    X_nan, Y_inf = X.copy(), Y.copy()
    X_nan[3, 1], Y_inf[2, 0] = np.nan, -np.inf
    for args, match in (((X_nan, Y), r"^X: inputs must be finite: nan at index \(3, 1\)"),
                        ((X, Y_inf), r"^Y: targets must be finite: -inf at index \(2, 0\)"),
                        ((X, np.full(Y.shape, "a")), r"^Y: targets must be a numeric array")):
        with pytest.raises(ConfigError, match=match):
            hessian_ranks(f, params, *args)
