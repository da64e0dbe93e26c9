"""Second hostile battery: wrong numbers without a word, models the engine cannot rank, and
the messages that go with them. Each test names the class of input it stands for."""

import csv
import textwrap

import jax.numpy as jnp
import numpy as np
import pytest

from hessrank import hessian_ranks
from hessrank.cli import main
from hessrank.config import RunConfig
from hessrank.errors import ConfigError, DataError
from hessrank.linalg import numerical_rank
from hessrank.measure.run import run
from hessrank.store import row_kinds

LINEAR = ["--dataset", "gaussian", "--dim", "4", "--K", "2", "--n", "20", "--units", "5,5"]


def _one_line(capsys, argv, *, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and needle in err, err
    return err


# --------------------------------------------------------------------------- a trained minimum
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A linear network trained by Adam to its least-squares minimum; the stored rows and parameters."""
    out = tmp_path_factory.mktemp("train")
    argv = ["train", *LINEAR, "--optimizer", "adam", "--steps", "1200", "--checkpoints", "0,5,60,1200",
            "--out", str(out)]
    assert main(argv) == 0
    table = next(out.rglob("*.csv"))
    with open(table, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return out, rows, table.with_name(table.stem + "_params") / "step1200.npz"


def _omega(params: dict) -> np.ndarray:
    """The oracle: Ω = Σ rᵢ xᵢᵀ of the stored parameters, by NumPy in float64 (the data regenerated)."""
    from hessrank.data import load_dataset

    data = load_dataset(RunConfig(dataset="gaussian", dim=4, K=2, n=20, units=(5, 5)))
    F = data.X @ params["W1"].T @ params["W2"].T @ params["W3"].T
    return (F - data.Y).T @ data.X


def test_at_a_least_squares_minimum_h_f_is_zero_and_says_so(trained):
    out, rows, params_file = trained
    params = dict(np.load(params_file))
    # the oracle: H_F is linear in Ω (the network is linear in each input), and Ω vanishes here
    assert np.abs(_omega(params)).max() < 1e-10
    last = rows[-1]
    assert (last["rank_F"], last["pred_F"]) == ("0", "0")
    assert last["rank_L"] == last["rank_o"] == last["pred_L"]


@pytest.mark.parametrize("method", ["dense", "matrix-free"])
def test_both_methods_read_zero_at_the_minimum(trained, method):
    out, rows, params_file = trained
    cfg = RunConfig(dataset="gaussian", dim=4, K=2, n=20, units=(5, 5), method=method)
    result = run(cfg, params=dict(np.load(params_file)), params_source=str(params_file))
    assert result.ranks["H_F"].rank == 0
    assert result.ranks["H_L"].rank == result.ranks["H_o"].rank == int(rows[-1]["rank_o"])
    assert result.prediction.point == "zero" and result.prediction.kinds["H_F"] == "exact"


def test_no_exact_prediction_differs_from_its_measurement_along_training(trained):
    out, rows, _ = trained
    assert len(rows) == 4
    for row in rows:
        for name, kind in row_kinds(row).items():
            suffix = name[-1]
            if kind == "exact":
                assert row[f"rank_{suffix}"] == row[f"pred_{suffix}"], (row["step"], name)
    assert row_kinds(rows[0]) == dict.fromkeys(("H_L", "H_o", "H_F"), "exact")   # the start is generic


def test_a_small_matrix_among_large_terms_is_counted_at_the_terms_scale():
    from hessrank.measure.scale import at_problem_scale

    rng = np.random.default_rng(0)
    B = rng.standard_normal((30, 3))
    H_o = B @ B.T                                      # the terms: magnitude ~ 30
    noise = 1e-15 * rng.standard_normal((30, 30))
    H_F = noise + noise.T                              # zero up to rounding at that scale
    ranks = {"H_L": numerical_rank(H_o + H_F), "H_o": numerical_rank(H_o), "H_F": numerical_rank(H_F)}
    assert ranks["H_F"].rank == 30                     # against its own largest eigenvalue: all noise counts
    scaled = at_problem_scale(ranks, rtol=None, atol=None)
    assert scaled["H_F"].rank == 0 and scaled["H_L"].rank == 3 and scaled["H_o"].rank == 3


# --------------------------------------------------------------------------- models below float64
_MODELS = textwrap.dedent('''
    import jax, jax.numpy as jnp, numpy as np

    def flax32(d, K, seed):
        import flax.linen as nn
        class Net(nn.Module):
            @nn.compact
            def __call__(self, x):
                return nn.Dense(K, dtype=jnp.float32)(jnp.tanh(nn.Dense(3, dtype=jnp.float32)(x)))
        net = Net()
        return net.apply, net.init(jax.random.PRNGKey(seed), jnp.ones((1, d)))

    def cast(d, K, seed):
        p = {"w": np.random.default_rng(seed).standard_normal((d, K))}
        return (lambda p, X: jax.lax.cond(True, lambda z: z.astype(jnp.float64), lambda z: z.astype(jnp.float64),
                                          X.astype(jnp.float32) @ p["w"].astype(jnp.float32))), p

    def callback(d, K, seed):
        p = {"w": np.ones((d, K))}
        def f(p, X):
            Z = X @ p["w"]
            return jax.pure_callback(np.tanh, jax.ShapeDtypeStruct(Z.shape, Z.dtype), Z)
        return f, p

    def integer(d, K, seed):
        return (lambda p, X: (X @ p["w"]).astype(jnp.int32)), {"w": np.ones((d, K))}

    def complex_out(d, K, seed):
        return (lambda p, X: (X @ p["w"]).astype(jnp.complex128)), {"w": np.ones((d, K))}

    def empty(d, K, seed):
        return (lambda p, X: X[:, :K]), {}

    def nan_derivative(d, K, seed):
        return (lambda p, X: jnp.sqrt(jnp.abs(X @ p["w"] - X @ p["w"]))), {"w": np.ones((d, K))}
''')


@pytest.fixture(scope="module")
def models_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "nets.py"
    path.write_text(_MODELS)
    return path


@pytest.mark.parametrize("name,needle,method", [
    ("flax32", "float32 inside", "dense"), ("cast", "float32 inside", "dense"),
    ("cast", "float32 inside", "matrix-free"),     # matrix-free once named a flag that does not exist
    ("callback", "host code", "auto"), ("integer", "int32", "auto"), ("complex_out", "complex128", "auto"),
    ("empty", "no parameter arrays", "matrix-free"),
])
def test_a_model_the_engine_cannot_rank_is_one_line_naming_model(capsys, models_file, name, needle, method):
    err = _one_line(capsys, ["run", "--dataset", "gaussian", "--n", "6", "--dim", "3", "--K", "2",
                             "--model", f"{models_file}:{name}", "--method", method], needle=needle)
    assert "--model" in err and "--operator" not in err


def test_the_python_api_refuses_float32_inside_f():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))

    def f(p, X):
        return (X.astype(jnp.float32) @ p["w"].astype(jnp.float32)).astype(jnp.float64)

    with pytest.raises(ConfigError, match="float32 inside"):
        hessian_ranks(f, {"w": rng.standard_normal((3, 2))}, X, Y)


@pytest.mark.parametrize("method", ["dense", "matrix-free"])
def test_nan_derivatives_are_not_called_an_overflow(capsys, models_file, method):
    err = _one_line(capsys, ["run", "--dataset", "gaussian", "--n", "6", "--dim", "3", "--K", "2",
                             "--model", f"{models_file}:nan_derivative", "--method", method], needle="NaN")
    assert "derivatives are NaN" in err and "scale the data down" not in err
    with pytest.raises(DataError, match="overflow"):
        numerical_rank(np.array([[np.inf, 0.0], [0.0, 1.0]]))


def test_predictions_at_a_point_use_what_the_point_satisfies():
    from hessrank.theory import at_point, predict_ranks

    generic = predict_ranks(r=4, K=2, units=(5, 5), n=20, d=4)
    assert at_point(generic, "generic", activation="linear") == generic
    zero = at_point(generic, "zero", activation="linear")
    assert (zero.H_F, zero.kinds["H_F"]) == (0, "exact") and (zero.H_L, zero.kinds["H_L"]) == (generic.H_o, "exact")
    special = at_point(generic, "special", activation="linear")
    assert special.kinds == {"H_L": "estimate", "H_o": "exact", "H_F": "estimate"} and special.point == "special"
    with pytest.raises(ConfigError):
        at_point(generic, "trained", activation="linear")


def test_float32_constants_of_a_model_are_not_reduced_precision():
    stats = jnp.linspace(1.0, 2.0, 2, dtype=jnp.float32)   # e.g. running statistics: exact in float64
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    result = hessian_ranks(lambda p, X: jnp.tanh(X @ p["w"]) * stats, {"w": rng.standard_normal((3, 2))}, X, Y)
    assert result.ranks["H_o"].rank == 6


def test_nan_products_in_the_sketch_are_not_called_an_overflow():
    from hessrank import sketch_rank
    from hessrank.curvature import CurvatureOperator

    def products(value):   # Hessian-vector products of a model, as the engine builds them
        return CurvatureOperator("H_F", 6, lambda V: np.full(np.shape(V), value))

    with pytest.raises(DataError, match="derivatives are NaN") as err:
        sketch_rank(products(np.nan))
    assert "scale the data down" not in str(err.value)
    with pytest.raises(DataError, match="overflow"):
        sketch_rank(products(np.inf))
