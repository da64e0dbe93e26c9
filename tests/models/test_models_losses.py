"""The network, its initialisations and the losses against obvious references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import ACT, forward

from hessrank import MLP, ConfigError, get_loss


@pytest.mark.parametrize("activation", list(ACT))
@pytest.mark.parametrize("bias", [False, True])
def test_apply_matches_hand_written_forward(activation, bias):
    model = MLP(widths=(5, 4, 3, 2), activation=activation, bias=bias)
    theta = model.init(seed=3)
    X = np.random.default_rng(1).standard_normal((6, 5))
    np.testing.assert_allclose(model.apply(theta, X), forward(jnp.asarray(theta), X, model.widths, activation, bias),
                               rtol=1e-13, atol=1e-14)
    assert model.num_params == theta.size == 5 * 4 + 4 * 3 + 3 * 2 + (4 + 3 + 2 if bias else 0)


def test_inits_are_seeded_and_distributed_as_documented():
    model = MLP(widths=(300, 200, 10))
    a, b = model.init(seed=1), model.init(seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, model.init(seed=2))
    W1 = model.unflatten(a)["W1"]
    assert np.std(W1) == pytest.approx(np.sqrt(2 / 500), rel=0.02)
    U = model.unflatten(model.init(seed=1, scheme="uniform"))["W1"]
    assert np.abs(U).max() <= np.sqrt(6 / 500)
    assert np.std(U) == pytest.approx(np.sqrt(2 / 500), rel=0.02)
    O = model.unflatten(model.init(seed=1, scheme="orthogonal"))
    np.testing.assert_allclose(O["W1"] @ O["W1"].T, np.eye(200), atol=1e-12)   # 200×300: orthonormal rows
    np.testing.assert_allclose(O["W2"] @ O["W2"].T, np.eye(10), atol=1e-12)
    with pytest.raises(ConfigError, match="scheme='he'"):
        model.init(scheme="he")


@pytest.mark.parametrize("name", ["mse", "cross", "cosh"])
def test_loss_grad_and_hessian_match_autodiff(name):
    loss = get_loss(name)
    rng = np.random.default_rng(0)
    for _ in range(5):
        f = jnp.asarray(rng.standard_normal(4) * 3)
        y = jnp.asarray(np.eye(4)[rng.integers(4)])
        np.testing.assert_allclose(loss.grad(f, y), jax.grad(loss.value)(f, y), atol=1e-13)
        np.testing.assert_allclose(loss.hessian(f, y), jax.hessian(loss.value)(f, y), atol=1e-13)


def test_loss_values():
    f, y = jnp.array([0.5, -1.0]), jnp.array([1.0, 0.0])
    assert float(get_loss("mse").value(f, y)) == pytest.approx(0.5 * (0.25 + 1.0))
    assert float(get_loss("cosh").value(f, y)) == pytest.approx(np.log(np.cosh(-0.5)) + np.log(np.cosh(-1.0)))
    assert float(get_loss("cross").value(f, y)) == pytest.approx(-np.log(np.exp(0.5) / (np.exp(0.5) + np.exp(-1.0))))
    assert np.isfinite(float(get_loss("cosh").value(jnp.array([800.0]), jnp.array([0.0]))))


def test_unknown_loss_and_activation():
    with pytest.raises(ConfigError, match="loss='l1': not one of mse, cross, cosh"):
        get_loss("l1")
    with pytest.raises(ConfigError, match="activation='gelu'"):
        MLP(widths=(2, 2), activation="gelu")
    with pytest.raises(ConfigError) as err:
        MLP(widths=(2, 3), activation="x")
    assert err.value.param == "activation" and "activation" in str(err.value) and "--" not in str(err.value)
