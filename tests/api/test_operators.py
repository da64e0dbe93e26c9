"""``sketch_rank`` and ``operator_spectrum`` on plain functions ``V -> V @ H`` (NumPy and JAX)
against ``numpy.linalg.matrix_rank`` and ``eigvalsh`` of the same matrix; bad functions refused."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hessrank
from hessrank import (
    ConfigError,
    DataError,
    SketchResult,
    SpectrumOptions,
    SymmetricOperator,
    operator_spectrum,
    sketch_rank,
)


def _symmetric(p, rank, *, definite, seed=0):
    """A random symmetric p×p matrix of the given rank: PSD, or with eigenvalues of both signs."""
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((p, rank))
    scale = rng.uniform(0.5, 3.0, rank) * (1 if definite else np.where(np.arange(rank) % 2, -1, 1))
    return (B * scale) @ B.T


@pytest.mark.parametrize("definite", [True, False])
@pytest.mark.parametrize("rank", [0, 1, 7, 24])
def test_rank_of_a_numpy_function_equals_matrix_rank(rank, definite):
    A = _symmetric(24, rank, definite=definite, seed=rank)
    res = sketch_rank(lambda V: V @ A, p=24)
    assert isinstance(res, SketchResult) and res.certified
    assert res.rank == np.linalg.matrix_rank(A, hermitian=True) == rank
    assert res.tol == pytest.approx(np.max(np.abs(np.linalg.eigvalsh(A)), initial=0.0) * 24 * np.finfo(float).eps,
                                    rel=1e-6)
    if 0 < rank < 24:
        assert res.gap_decades > 8                    # a clear cliff: exact low rank
    assert res.to_dict()["certificate"]["status"] == res.certificate.status and len(repr(res)) < 200
    assert res.info.to_dict()["rank"] == hessrank.numerical_rank(A).rank == rank


def test_a_jax_function_and_the_operator_class_give_the_same_rank():
    A = _symmetric(30, 9, definite=False, seed=3)
    Aj = jnp.asarray(A)
    with jax.enable_x64(True):
        res = sketch_rank(lambda V: V @ Aj, p=30)
    assert res.rank == np.linalg.matrix_rank(A, hermitian=True) == 9
    op = hessrank.as_operator(lambda V: V @ A, p=30, name="A")
    assert isinstance(op, SymmetricOperator) and sketch_rank(op).rank == 9
    spec = operator_spectrum(lambda V: V @ Aj, SpectrumOptions(density=False), p=30)
    exact = np.linalg.eigvalsh(A)
    exact = exact[np.argsort(-np.abs(exact))]
    assert spec.rank == 9 and spec.certified
    np.testing.assert_allclose(spec.top[:9], exact[:9], rtol=1e-9)
    assert spec.trace.value == pytest.approx(np.trace(A), rel=1e-8, abs=1e-8)


@pytest.mark.parametrize("call,match", [
    (lambda A: sketch_rank(lambda V: V @ A), "p: missing"),
    (lambda A: sketch_rank(lambda V: V @ A, p=0), "p=0"),
    (lambda A: sketch_rank(lambda V: (V @ A)[:, :5], p=12), r"matmat=\(\d+, 5\)"),
    (lambda A: sketch_rank(lambda V: V @ (A + np.triu(np.ones_like(A))), p=12), "not symmetric"),
    (lambda A: sketch_rank(np.eye(3), p=3), "not callable"),
    (lambda A: operator_spectrum(lambda V: V @ A), "p: missing"),
])
def test_bad_functions_are_refused_in_one_line(call, match):
    A = _symmetric(12, 3, definite=True)
    with pytest.raises(ConfigError, match=match) as err:
        call(A)
    assert "\n" not in str(err.value)


def test_non_finite_products_are_a_data_error_naming_the_function():
    with pytest.raises(DataError, match="matmat: returned 144 NaN or infinite value") as err:
        sketch_rank(lambda V: V @ np.full((12, 12), np.nan), p=12)
    assert err.value.param == "matmat" and "\n" not in str(err.value)
