"""Flax and Equinox models through ``from_flax`` / ``from_equinox``: the parameters are the
trainable arrays alone, and the ranks equal ``jax.hessian`` and explicit Σ JᵀΛJ over them
(tests/reference.py)."""

import sys

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import count_above, default_tol, ref_pytree_matrices

import hessrank
from hessrank import ConfigError, HessrankError, from_equinox, from_flax, hessian_ranks


def _size(tree) -> int:
    return sum(int(np.size(a)) for a in jax.tree_util.tree_leaves(tree))


def _check_against_reference(f, params, X, labels, loss):
    K = int(labels.max()) + 1
    Y = np.eye(K)[labels]
    H_L, H_o, _, _ = ref_pytree_matrices(f, params, X, Y, loss)
    res = hessian_ranks(f, params, X, labels, loss=loss, method="dense")
    for name, H in {"H_L": H_L, "H_o": H_o, "H_F": H_L - H_o}.items():
        assert res.ranks[name].rank == count_above(H, default_tol(H)), name
    return res


class _BatchNormNet(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.Dense(5)(x)
        x = nn.BatchNorm(use_running_average=True)(x)
        return nn.Dense(3)(jnp.tanh(x))


def test_flax_batchnorm_statistics_are_held_fixed_not_counted(samples):
    X, labels = samples(9, 3, 3)
    module = _BatchNormNet()
    variables = jax.jit(module.init)(jax.random.PRNGKey(0), X)
    rng = np.random.default_rng(5)   # running statistics far from (0, 1): they must enter f as constants
    variables = {"params": variables["params"],
                 "batch_stats": jax.tree_util.tree_map(lambda a: jnp.asarray(rng.uniform(0.5, 2.0, a.shape)),
                                                       variables["batch_stats"])}
    f, params = from_flax(module, variables)
    assert _size(params) == 3 * 5 + 5 + 2 * 5 + 5 * 3 + 3 == 48
    assert _size(variables) == 58                                           # what counting batch_stats gave
    res = _check_against_reference(f, params, X, labels, "cross")
    assert res.p == 48 and "blocks" not in res.to_dict()
    np.testing.assert_allclose(jax.jit(f)(params, X), jax.jit(module.apply)(variables, X), rtol=1e-6)


def test_flax_nnx_batch_statistics_are_held_fixed(samples):
    from flax import nnx

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.hidden = nnx.Linear(3, 4, rngs=rngs)
            self.bn = nnx.BatchNorm(4, use_running_average=True, rngs=rngs)
            self.out = nnx.Linear(4, 3, use_bias=False, rngs=rngs)

        def __call__(self, x):
            return self.out(jnp.tanh(self.bn(self.hidden(x))))

    net = Net(nnx.Rngs(3))
    # running statistics away from (0, 1): constants of f, not parameters
    net.bn.mean[...] = jnp.linspace(-1.0, 1.0, 4, dtype=net.bn.mean.dtype)
    net.bn.var[...] = jnp.linspace(0.5, 2.0, 4, dtype=net.bn.var.dtype)
    X, labels = samples(8, 3, 3)
    f, params = from_flax(net)
    assert _size(params) == 3 * 4 + 4 + 2 * 4 + 4 * 3 == 36 and _size(nnx.state(net)) == 44
    assert _check_against_reference(f, params, X, labels, "mse").p == 36
    np.testing.assert_allclose(jax.jit(f)(params, X), net(X), rtol=1e-6)


class _Permuted(eqx.Module):
    mlp: eqx.nn.MLP
    order: jax.Array        # an integer leaf: part of the model, not a parameter

    def __call__(self, x):
        return self.mlp(x)[self.order]


def test_equinox_integer_leaf_is_held_fixed(samples):
    X, labels = samples(9, 3, 3)
    model = _Permuted(eqx.nn.MLP(3, 3, 4, 1, activation=jnp.tanh, key=jax.random.PRNGKey(1)), jnp.array([2, 0, 1]))
    f, params = from_equinox(model)
    assert _size(params) == 3 * 4 + 4 + 4 * 3 + 3 == 31
    res = _check_against_reference(f, params, X, labels, "mse")
    assert res.p == 31
    np.testing.assert_allclose(jax.jit(f)(params, X), jax.jit(jax.vmap(model))(X), rtol=1e-6)


def test_missing_packages_and_bad_arguments_are_one_line(monkeypatch):
    with pytest.raises(ConfigError, match="variables: no 'params' collection"):
        from_flax(_BatchNormNet(), {"batch_stats": {}})
    with pytest.raises(ConfigError, match="module=int: not a Flax Linen or NNX module"):
        from_flax(3, {"params": {}})
    monkeypatch.setitem(sys.modules, "flax", None)
    monkeypatch.setitem(sys.modules, "equinox", None)
    for call in (lambda: from_flax(_BatchNormNet(), {"params": {}}), lambda: hessrank.from_equinox(object())):
        with pytest.raises(HessrankError, match=r'not installed: pip install "hessrank\[models\]"') as err:
            call()
        assert "\n" not in str(err.value)
