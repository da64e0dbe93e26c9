"""numerical_rank against NumPy's matrix_rank, and the tolerance / gap rules."""

import math

import numpy as np
import pytest

from hessrank import covariance_rank, numerical_rank
from hessrank.linalg.rank import EPS, rank_from_eigenvalues


def _low_rank_symmetric(p, r, seed, indefinite=False):
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((p, r))
    signs = rng.choice([-1.0, 1.0], r) if indefinite else np.ones(r)
    return (B * signs) @ B.T


@pytest.mark.parametrize("p,r", [(1, 1), (10, 0), (30, 7), (80, 80), (120, 33)])
@pytest.mark.parametrize("indefinite", [False, True])
def test_matches_numpy_matrix_rank(p, r, indefinite):
    H = _low_rank_symmetric(p, r, seed=p + r, indefinite=indefinite)
    info = numerical_rank(H)
    assert info.rank == np.linalg.matrix_rank(H) == r
    assert info.size == p
    # eigenvalues ordered by decreasing magnitude, equal to numpy's
    np.testing.assert_allclose(np.sort(info.eigenvalues), np.linalg.eigvalsh(H), atol=1e-10 * max(1, np.abs(H).max()))
    assert np.all(np.diff(np.abs(info.eigenvalues)) <= 0)


def test_default_tolerance_rule_and_gap():
    lam = np.array([10.0, -5.0, 1e-3, 1e-15, -1e-16])
    info = rank_from_eigenvalues(lam, size=5)
    assert info.tol == pytest.approx(10.0 * 5 * EPS)
    assert info.rank == 3
    assert info.gap_decades == pytest.approx(math.log10(1e-3 / 1e-15))


def test_overrides():
    lam = np.array([1.0, 1e-3, 1e-6, 1e-9])
    assert rank_from_eigenvalues(lam, rtol=1e-4).rank == 2
    assert rank_from_eigenvalues(lam, atol=1e-7).rank == 3
    assert rank_from_eigenvalues(lam, rtol=1e-4, atol=1e-7).rank == 2  # larger wins
    assert rank_from_eigenvalues(lam, rtol=1e-4, atol=1e-2).rank == 1


def test_gap_edge_cases():
    assert rank_from_eigenvalues(np.ones(4)).gap_decades is None            # full rank
    assert rank_from_eigenvalues(np.zeros(4)).gap_decades is None           # rank 0
    assert math.isinf(rank_from_eigenvalues(np.array([2.0, 0.0])).gap_decades)
    # implicit zeros: 2 eigenvalues given of a 5×5 matrix
    info = rank_from_eigenvalues(np.array([3.0, 1.0]), size=5)
    assert info.rank == 2 and math.isinf(info.gap_decades)


def test_covariance_rank():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 20))
    assert covariance_rank(X).rank == np.linalg.matrix_rank(X.T @ X) == 6
    X = rng.standard_normal((50, 3)) @ rng.standard_normal((3, 12))
    assert covariance_rank(X).rank == 3


def test_rejects_non_square():
    with pytest.raises(ValueError, match="square"):
        numerical_rank(np.zeros((3, 4)))


def test_rejects_what_it_would_rank_wrongly_without_a_word():
    """A non-symmetric matrix (the eigensolver would read one triangle), a complex one (cast to real),
    a tolerance that is negative, NaN or not a number (NaN counted nothing as rank 0); round-off
    asymmetry passes."""
    from hessrank import ConfigError, operator_spectrum, sketch_rank

    H = _low_rank_symmetric(20, 5, 0)
    A = H + np.triu(np.ones_like(H), 1)
    for bad, match in ((A, r"^H: not symmetric: max\|H − Hᵀ\| = 1"), (H + 1j * np.eye(20), "^H: complex entries")):
        with pytest.raises(ConfigError, match=match):
            numerical_rank(bad)
    assert numerical_rank(H + 1e-12 * np.abs(H).max() * np.triu(np.ones_like(H), 1)).size == 20   # round-off: ranked
    for kw in (dict(rtol=-1e-9), dict(rtol=float("nan")), dict(atol=float("inf")), dict(rtol="1e-9"),
               dict(atol=True)):
        name, value = next(iter(kw.items()))
        for call in (lambda: numerical_rank(H, **kw), lambda: covariance_rank(H, **kw),
                     lambda: sketch_rank(lambda V: V @ H, p=20, **kw),
                     lambda: operator_spectrum(lambda V: V @ H, p=20, **kw)):
            with pytest.raises(ConfigError, match=f"^{name}=.*give a finite tolerance >= 0"):
                call()


def test_ranks_at_rtols_match_numpy_matrix_rank_on_a_relu_hessian():
    """Rank against tolerance on a spectrum without a cliff (ReLU), against SVD-based
    ``numpy.linalg.matrix_rank`` with the same absolute cut."""
    from hessrank import RunConfig
    from hessrank.curvature import loss_hessian
    from hessrank.linalg.rank import RTOL_SCAN, ranks_at_rtols
    from hessrank.measure import build
    from hessrank.models import get_loss

    cfg = RunConfig(dataset="digits", n=60, dim=16, K=4, units=(8, 8), activation="relu", bias=True)
    data, model, theta = build(cfg)
    H = loss_hessian(model, get_loss("mse"), theta, data.X, data.Y)
    info = numerical_rank(H)
    # cuts above the eigensolvers' own error (~p·eps·max|λ|): below it eigh and SVD may differ
    rtols = [r for r in RTOL_SCAN if r >= 1e-13]
    got = ranks_at_rtols(info, rtols)
    top = np.linalg.svd(H, compute_uv=False)[0]
    want = [int(np.linalg.matrix_rank(H, tol=rtol * top)) for rtol in rtols]
    assert got == want
    assert got == sorted(got, reverse=True) and got[0] > got[-1]  # the rank really moves with the cut


def test_ranks_at_rtols_unresolved_cuts_and_implied_zeros():
    from hessrank.linalg.rank import ranks_at_rtols

    info = rank_from_eigenvalues([10.0, -1e-3, 1e-9], size=50)  # 47 eigenvalues not listed: zeros
    assert ranks_at_rtols(info, [1e-12, 1e-6, 1e-2]) == [3, 2, 1]
    # a sketch resolves eigenvalues down to 2δ = 1e-5 only
    assert ranks_at_rtols(info, [1e-12, 1e-6, 1e-2], resolved_below=1e-5) == [None, None, 1]


def test_two_stage_eigenvalues_equal_numpy_and_the_rank_rule_is_unchanged():
    from hessrank.linalg import spectrum
    from hessrank.linalg.lapack import eigvalsh_2stage, two_stage_available

    rng = np.random.default_rng(11)
    for p, r in ((1, 1), (7, 3), (60, 20), (301, 150)):
        B = rng.standard_normal((p, r))
        H = B @ np.diag(rng.standard_normal(r)) @ B.T
        ref = np.linalg.eigvalsh(H)
        assert np.allclose(spectrum(H), ref, rtol=0, atol=1e-12 * np.abs(ref).max())
        assert numerical_rank(H).rank == np.linalg.matrix_rank(H, hermitian=True) == r
        if two_stage_available():
            H2 = H.copy()
            w = eigvalsh_2stage(H2, overwrite=True)
            assert np.allclose(w, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
            # only the upper triangle is read; in place on a leading block (row stride > n), the
            # strictly lower triangle is left as it was
            big = np.full((p + 5, p + 9), np.nan)
            big[:p, :p] = np.triu(H) + np.tril(np.full((p, p), 7.0), -1)
            w = eigvalsh_2stage(big[:p, :p], overwrite=True)
            assert np.allclose(w, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
            assert np.array_equal(np.tril(big[:p, :p], -1), np.tril(np.full((p, p), 7.0), -1))
            assert np.isnan(big[p:]).all() and np.isnan(big[:, p:]).all()
