"""A torch.nn.Module through the engine: ranks and block ranks against torch.autograd.functional
references, dense and matrix-free; linear networks against the formula; the same network in JAX and
in PyTorch gives the same ranks, tolerances and spectra."""

import jax.numpy as jnp
import numpy as np
import pytest
from reference import count_above, default_tol
from torch_reference import SmallCNN, data, mlp, ref_torch_matrices, torch

import hessrank
from hessrank import MLP, hessian_ranks, hessian_spectrum, predict_ranks
from hessrank.linalg import covariance_rank


def _check(module, X, Y, loss, method, blocks):
    H_L, H_o, names, sizes = ref_torch_matrices(module, X, Y, loss)
    res = hessian_ranks(module, None, X, Y, loss=loss, method=method, blocks=blocks)
    assert res.method == method
    whole = {"H_L": H_L, "H_o": H_o, "H_F": H_L - H_o}
    tols = {m: default_tol(H) for m, H in whole.items()}
    for m, H in whole.items():
        assert res.ranks[m].rank == count_above(H, tols[m]), (m, method)
    starts = dict(zip(names, np.cumsum([0] + sizes[:-1])))
    size_of = dict(zip(names, sizes))
    assert res.blocks
    for name, blk in res.blocks.items():
        idx = np.concatenate([np.arange(starts[l], starts[l] + size_of[l]) for l in blk.leaves])
        for m, H in whole.items():  # counted at the whole matrix's tolerance
            assert blk.ranks[m].rank == count_above(H[np.ix_(idx, idx)], tols[m]), (name, m, method)
    return res


BATTERY = [
    ("mlp", dict(activation="tanh", bias=True), "mse"),
    ("mlp", dict(activation="relu", bias=False), "cross"),
    ("mlp", dict(activation="tanh", bias=False), "cosh"),
    ("cnn", dict(activation="relu", bias=True), "cross"),
    ("cnn", dict(activation="tanh", bias=False), "mse"),
    ("cnn", dict(activation="relu", bias=False), "cosh"),
]


@pytest.mark.parametrize("kind,kw,loss", BATTERY)
def test_module_ranks_and_block_ranks_equal_the_torch_reference(kind, kw, loss):
    if kind == "mlp":
        module, shape = mlp(4, (5, 4), 3, **kw), (4,)
    else:
        module, shape = SmallCNN(side=5, K=3, **kw), (1, 5, 5)
    X, Y = data(8, shape, 3, loss)
    res_d = _check(module, X, Y, loss, "dense", "leaves")
    res_m = _check(module, X, Y, loss, "matrix-free", "layers")
    assert not res_m.uncertified
    assert {k: v.rank for k, v in res_d.ranks.items()} == {k: v.rank for k, v in res_m.ranks.items()}


@pytest.mark.parametrize("n,d,units,K,loss", [
    (12, 6, (4,), 3, "mse"),
    (10, 5, (3, 4), 4, "cross"),
    (8, 7, (6, 2), 3, "cosh"),
    (14, 4, (5, 5), 2, "mse"),
])
def test_linear_module_without_bias_gives_the_predicted_ranks(n, d, units, K, loss):
    module = mlp(d, units, K, activation="linear", bias=False, seed=n)
    X, Y = data(n, (d,), K, loss, seed=n)
    r = covariance_rank(X).rank
    pred = predict_ranks(r=r, K=K, units=units, loss=loss, n=n, d=d)
    assert pred.kind == "exact"
    for method in ("dense", "matrix-free"):
        res = hessian_ranks(module, None, torch.as_tensor(X), torch.as_tensor(Y), loss=loss, method=method)
        assert (res.ranks["H_L"].rank, res.ranks["H_o"].rank, res.ranks["H_F"].rank) == \
            (pred.H_L, pred.H_o, pred.H_F), method


def _jax_and_torch_twins(widths, activation, bias, seed=2):
    """hessrank's MLP and a torch Sequential with the same weights (W_l row-major, then b_l: Linear's order)."""
    model = MLP(widths=widths, activation=activation, bias=bias)
    theta = np.asarray(model.init(seed=seed))
    module = mlp(widths[0], widths[1:-1], widths[-1], activation=activation, bias=bias).double()
    with torch.no_grad():  # float64 first: the same weights exactly
        start = 0
        for _, prm in module.named_parameters():
            prm.copy_(torch.as_tensor(theta[start:start + prm.numel()]).view_as(prm))
            start += prm.numel()
    pieces = np.split(theta, np.cumsum([prm.numel() for prm in module.parameters()])[:-1])
    # JAX's parameters as the same list of arrays: one leaf per torch parameter, in the same order
    return model, pieces, module, lambda params, X: model.apply(jnp.concatenate(params), X)


@pytest.mark.parametrize("method", ["dense", "matrix-free"])
def test_the_same_network_in_jax_and_torch_gives_the_same_ranks_tolerances_and_spectra(method):
    widths, loss = (5, 6, 4, 3), "cross"
    model, theta, module, f = _jax_and_torch_twins(widths, "tanh", True)
    X, Y = data(9, (5,), 3, loss)
    jx = hessian_ranks(f, theta, X, Y, loss=loss, method=method, blocks="leaves")
    tc = hessian_ranks(module, None, X, Y, loss=loss, method=method, blocks="leaves")
    for m in ("H_L", "H_o", "H_F"):
        assert jx.ranks[m].rank == tc.ranks[m].rank, m
        assert tc.ranks[m].tol == pytest.approx(jx.ranks[m].tol, rel=1e-8), m
    # the same blocks, by position (JAX names its leaves 0, 1, …, torch "0.weight", "0.bias", …)
    assert [b.size for b in tc.blocks.values()] == [b.size for b in jx.blocks.values()] == [30, 6, 24, 4, 12, 3]
    for bj, bt in zip(jx.blocks.values(), tc.blocks.values()):
        assert {m: v.rank for m, v in bj.ranks.items()} == {m: v.rank for m, v in bt.ranks.items()}
    sj = hessian_spectrum(f, theta, X, Y, loss=loss, method=method, top=6, density=False, seed=1).to_dict()
    st = hessian_spectrum(module, None, X, Y, loss=loss, method=method, top=6, density=False, seed=1).to_dict()
    for m in ("H_L", "H_o", "H_F"):
        top_j, top_t = np.asarray(sj[m]["top"]), np.asarray(st[m]["top"])
        scale = np.max(np.abs(top_j))
        assert np.max(np.abs(top_j - top_t)) <= 1e-8 * scale, m
    assert st["front_end"] == "torch" and st["mode"] == "train"


def test_the_p_axis_is_named_by_the_modules_parameters():
    module = SmallCNN(side=5, K=2, activation="tanh")
    X, Y = data(6, (1, 5, 5), 2, "mse")
    res = hessian_ranks(module, None, X, Y, method="dense", blocks="leaves")
    assert list(res.blocks) == ["conv1.weight", "conv1.bias", "head.weight", "head.bias"]
    res = hessian_ranks(module, None, X, Y, method="dense", blocks="layers")
    assert {k: b.leaves for k, b in res.blocks.items()} == {"conv1": ("conv1.weight", "conv1.bias"),
                                                            "head": ("head.weight", "head.bias")}
    res = hessian_ranks(module, None, X, Y, method="dense",
                        blocks={"filters": ["conv1.weight"], "readout": ["head.weight", "head.bias"]})
    assert [b.size for b in res.blocks.values()] == [18, 2 * 18 + 2]
    with pytest.raises(hessrank.ConfigError, match="blocks='conv2.weight'"):
        hessian_ranks(module, None, X, Y, method="dense", blocks={"x": ["conv2.weight"]})
    with pytest.raises(hessrank.ConfigError, match="blocks='conv1.bias': listed twice"):
        hessian_ranks(module, None, X, Y, method="dense", blocks={"x": ["conv1.bias", "conv1.bias"]})
