"""Matrix-free H_L, H_o, H_F: operators against jax.hessian, the certified sketch against
NumPy's matrix_rank on explicit matrices, and matrix-free ranks against dense ranks."""

import json

import numpy as np
import pytest
from reference import ref_loss_hessian, ref_outer_product

from hessrank import ConfigError, RunConfig, hessians, numerical_rank, run
from hessrank.cli import main
from hessrank.curvature import (
    CurvatureOperator,
    functional_hessian_operator,
    loss_hessian_operator,
    outer_product_factor,
    outer_product_operator,
    psd_sqrt,
)
from hessrank.linalg import _orthogonalise as orthogonalise
from hessrank.linalg import _subspace as subspace
from hessrank.linalg.sketch import Subspace, rank_info_from_ritz, residual_bound, sketch_rank
from hessrank.measure import matrix_free_ranks, plan_memory
from hessrank.measure import plan as planning


def _explicit(H):
    return CurvatureOperator("H", H.shape[0], lambda V: np.asarray(V) @ H)


# ----------------------------------------------------------------- operators
@pytest.mark.parametrize("activation,loss,bias", [("tanh", "cross", True), ("relu", "cosh", False),
                                                  ("linear", "mse", False), ("sigmoid", "cross", False)])
def test_operators_match_jax_hessian_and_explicit_ggn(activation, loss, bias, problem):
    model, lossf, theta, X, Y = problem(activation, loss, bias)
    H_L = ref_loss_hessian(theta, X, Y, model.widths, activation, bias, loss)
    H_o = ref_outer_product(theta, X, Y, model.widths, activation, bias, loss)
    V = np.random.default_rng(1).standard_normal((70, model.num_params))   # 70: two calls, one padded
    scale = np.abs(H_L).max()
    for make, H in ((loss_hessian_operator, H_L), (outer_product_operator, H_o),
                    (functional_hessian_operator, H_L - H_o)):
        op = make(model, lossf, theta, X, Y, batch_size=3)                  # 7 = 3 + 3 + 1 (padded)
        np.testing.assert_allclose(op(V), V @ H, atol=1e-11 * scale * np.abs(V).max(), rtol=0)
    A = outer_product_factor(model, lossf, theta, X, Y, batch_size=3)
    assert A.shape == (7 * 3, model.num_params)
    np.testing.assert_allclose(A.T @ A, H_o, atol=1e-12 * scale, rtol=0)


def test_psd_sqrt_of_singular_softmax_hessians():
    rng = np.random.default_rng(0)
    for _ in range(5):
        s = np.exp(rng.standard_normal(4)); s /= s.sum()
        Lam = np.diag(s) - np.outer(s, s)                                   # rank K − 1
        S = np.asarray(psd_sqrt(Lam))
        np.testing.assert_allclose(S, S.T, atol=1e-15)
        np.testing.assert_allclose(S @ S, Lam, atol=1e-14)


def test_operator_rejects_wrong_length(problem):
    model, lossf, theta, X, Y = problem("linear", "mse", False)
    with pytest.raises(ValueError, match="p = "):
        loss_hessian_operator(model, lossf, theta, X, Y)(np.zeros((2, 5)))


# ----------------------------------------------------------------- the sketch
def _symmetric(p, eigenvalues, seed):
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((p, p)))
    lam = np.zeros(p)
    lam[:len(eigenvalues)] = eigenvalues
    return (Q * lam) @ Q.T


@pytest.mark.parametrize("p,eigs", [
    (300, np.logspace(0, -9, 120) * np.where(np.arange(120) % 3 == 0, -1, 1)),  # indefinite, 9 decades
    (300, np.r_[np.full(150, 2.0), np.full(40, -1.0)]),                         # multiplicities beyond a block
    (200, np.r_[5.0, np.full(30, 1e-6)]),
    (150, np.ones(1)),
])
def test_sketch_rank_equals_matrix_rank_and_bound_holds(p, eigs):
    H = _symmetric(p, eigs, seed=p)
    res = sketch_rank(_explicit(H), block=32, probes=16, seed=3)
    assert res.certificate.status == "certified"
    assert res.info.rank == np.linalg.matrix_rank(H, hermitian=True) == len(eigs)
    assert res.info.size == p
    # the certificate's claim, checked on the explicit matrix (itself exact only to rounding)
    Q = res.subspace.Q
    np.testing.assert_allclose(Q @ Q.T, np.eye(Q.shape[0]), atol=20 * np.finfo(float).eps)
    assert np.linalg.norm(H - Q.T @ (Q @ H), 2) <= res.certificate.residual_bound + 1e-13
    # Ritz values above the cut are H's eigenvalues
    top = np.sort(np.abs(res.info.eigenvalues))[::-1][:res.info.rank]
    np.testing.assert_allclose(top, np.sort(np.abs(eigs))[::-1], rtol=1e-9, atol=1e-14)


def test_products_written_into_reused_buffers_change_nothing():
    # an operator that writes V H into the sketch's own buffer (as the curvature operators do), and
    # directions computed in the basis' next rows: the same basis and rank as fresh arrays give
    H = _symmetric(300, np.logspace(0, -8, 140), seed=7)
    seen = []

    def into(V, out):
        seen.append(out)
        return np.matmul(V, H, out=out)

    plain = sketch_rank(_explicit(H), block=32, probes=16, seed=3)
    reused = sketch_rank(CurvatureOperator("H", 300, lambda V: np.asarray(V) @ H, into), block=32, probes=16, seed=3)
    assert reused.info.rank == plain.info.rank == 140 and reused.certificate.status == "certified"
    assert len({id(b.base) for b in seen if b.base is not None}) <= 2      # the same buffer, regrown at most once
    Q = reused.subspace.Q
    np.testing.assert_allclose(Q @ Q.T, np.eye(Q.shape[0]), atol=20 * np.finfo(float).eps)
    np.testing.assert_allclose(reused.subspace.T, Q @ H @ Q.T, atol=1e-12)
    np.testing.assert_allclose(np.sort(reused.info.eigenvalues)[-140:], np.sort(plain.info.eigenvalues)[-140:],
                               rtol=1e-10, atol=1e-13)


def test_curvature_operator_into_writes_the_given_buffer(problem):
    model, lossf, theta, X, Y = problem("tanh", "cross", True)
    op = functional_hessian_operator(model, lossf, theta, X, Y, batch_size=3)
    V = np.random.default_rng(2).standard_normal((9, model.num_params))
    out = np.full_like(V, np.nan)
    assert op.into(V, out) is out
    np.testing.assert_array_equal(out, op(V))
    with pytest.raises(ValueError, match="out must be float64"):
        op.into(V, np.empty((8, model.num_params)))


def test_full_rank_completes_the_basis_and_zero_is_rank_zero():
    H = _symmetric(60, np.linspace(1, 2, 60), seed=1)
    res = sketch_rank(_explicit(H), block=16, probes=8)
    assert res.certificate.status == "complete basis" and res.certificate.columns == 60
    assert res.info.rank == 60 and res.certificate.failure_probability == 0
    zero = sketch_rank(_explicit(np.zeros((40, 40))))
    assert zero.info.rank == 0 and zero.certificate.certified


def test_memory_cap_is_reported_not_hidden():
    H = _symmetric(200, np.ones(100), seed=2)
    res = sketch_rank(_explicit(H), block=16, probes=8, max_columns=50)
    assert not res.certificate.certified and "memory cap of 50" in res.certificate.status
    assert res.info.rank <= 50
    Q = res.subspace.Q        # the bound of the last probes holds for what is left out
    left = np.linalg.norm(H - Q.T @ (Q @ H), 2)
    assert 0.5 < left <= res.certificate.residual_bound


def test_subspace_keeps_rayleigh_quotient():
    H = _symmetric(80, np.arange(1.0, 31.0), seed=4)
    space = Subspace(80, 80)
    V = np.random.default_rng(0).standard_normal((20, 80))
    assert space.add_span(V, _explicit(H)) == 20
    W = np.random.default_rng(1).standard_normal((5, 80))
    assert space.add_span(np.r_[V[:5], V[:5] + 1e-3 * W], _explicit(H)) == 5   # only the new directions
    np.testing.assert_allclose(space.T, space.Q @ H @ space.Q.T, atol=1e-12)
    assert space.add_span(V @ np.eye(80), _explicit(H)) == 0  # nothing outside the span


def test_directions_below_the_gram_routes_resolution_are_kept_and_rounding_is_not():
    # a residual with 5 strong directions (singular values ~1) and 3 weak ones (1e-8, below the
    # Gram route's 1e-6 of the strongest): all 8 are found in one call, and the weak ones are the
    # planted directions; rounding-level content (1e-17) is never taken for a direction
    rng = np.random.default_rng(5)
    p, b = 400, 16
    basis, _ = np.linalg.qr(rng.standard_normal((p, 8)))
    strong, weak = basis[:, :5].T, basis[:, 5:].T
    R = rng.standard_normal((b, 5)) @ strong + 1e-8 * rng.standard_normal((b, 3)) @ weak
    U, s = orthogonalise._kept_directions(R, 1e-12, 1.0)
    assert U.shape[0] == 8 and np.sum(s < 1e-6) == 3
    U = orthogonalise.cholesky_qr2(U)
    np.testing.assert_allclose(U @ U.T, np.eye(8), atol=1e-13)
    np.testing.assert_allclose(np.linalg.norm(weak @ U.T, axis=1), 1.0, atol=1e-6)   # the planted ones
    out = np.full((b, p), np.nan)                                                   # in given rows
    V, _ = orthogonalise._kept_directions(R, 1e-12, 1.0, out)
    assert np.shares_memory(V, out) and V.shape[0] == 8
    noisy = rng.standard_normal((b, 5)) @ strong + 1e-17 * rng.standard_normal((b, p))
    assert orthogonalise._kept_directions(noisy, 0.0, 1.0)[0].shape[0] == 5


def test_a_basis_too_large_to_reserve_is_a_memory_error(monkeypatch):
    # the basis buffers are anonymous mappings: a refused one reads as out of memory (the CLI's
    # "out of memory" line), not as a file error
    with pytest.raises(MemoryError, match="cannot reserve"):
        Subspace(2**40, 2**40)                                  # more bytes than an address holds

    def refused(*args, **kwargs):
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(subspace.mmap, "mmap", refused)       # what the kernel answers when it is too large
    with pytest.raises(MemoryError, match="cannot reserve .*Cannot allocate memory"):
        Subspace(1000, 100)


def test_ritz_values_in_place_leave_t_as_it_was(monkeypatch):
    # the eigenvalues of T computed in T's own buffer (no k×k copy): T intact afterwards
    H = _symmetric(120, np.linspace(-3, 5, 90), seed=9)
    space = Subspace(120, 110)
    space.add_span(np.random.default_rng(0).standard_normal((100, 120)), _explicit(H))
    before = space.T.copy()
    monkeypatch.setattr(subspace, "RITZ_TWO_STAGE_FROM", 10)
    monkeypatch.setattr(subspace, "_RESTORE_ROWS", 16)      # several blocks
    theta = space.ritz_values()
    np.testing.assert_array_equal(space.T, before)
    np.testing.assert_allclose(theta, np.linalg.eigvalsh(before), atol=1e-12)


def test_krylov_steps_skip_only_rounding_chunks_of_t():
    # p = 2000, 1400 eigenvalues over 6 decades: bases beyond one chunk, so T's rows are computed
    # only where the chunk summaries see more than rounding (rtol 1e-8 puts the cut high enough)
    eigs = np.logspace(0, -6, 1400) * np.where(np.arange(1400) % 4 == 0, -1, 1)
    H = _symmetric(2000, eigs, seed=7)
    res = sketch_rank(_explicit(H), rtol=1e-8, block=128, probes=32, seed=1)
    space = res.subspace
    assert res.certificate.certified and res.info.rank == 1400 == np.linalg.matrix_rank(H, tol=1e-8)
    assert space.skipped_entries > 0
    eps = np.finfo(float).eps
    Q = space.Q
    # what was left 0 is rounding: T against Q H Qᵀ formed explicitly
    assert np.abs(space.T - Q @ H @ Q.T).max() <= 1e3 * eps
    np.testing.assert_allclose(Q @ Q.T, np.eye(Q.shape[0]), atol=20 * eps)


def test_append_computes_every_chunk_with_more_than_rounding():
    p, k = 3000, 1100
    rng = np.random.default_rng(0)
    space = Subspace(p, 1400)
    Q0 = np.linalg.qr(rng.standard_normal((p, k + 8)))[0].T
    space.append(Q0[:k], rng.standard_normal((k, p)) * 1e-3)
    U = Q0[k:]
    tau = 1e-12
    W = 1e-18 * rng.standard_normal((8, p))          # rounding-level everywhere ...
    W[3] += 20 * tau * Q0[700]                         # ... but 20 τ on one row of chunk 1
    W[5] += 1e-9 * Q0[1050]                            # and a large one in chunk 2
    C = space.append(U, W, skip_below=tau)
    exact = W @ Q0[:k + 8].T
    size = subspace.SKETCH_CHUNK
    planted = {700 // size, 1050 // size}
    for c in range(-(-k // size)):
        cols = slice(c * size, min((c + 1) * size, k))
        if c in planted:      # computed, exactly
            np.testing.assert_allclose(C[:, cols], exact[:, cols], rtol=1e-12, atol=1e-24)
        else:                 # rounding only: left 0
            assert np.all(C[:, cols] == 0)
    np.testing.assert_allclose(C[:, k:], exact[:, k:], rtol=1e-12, atol=1e-24)
    assert space.skipped_entries == 8 * sum(min(size, k - c * size) for c in range(-(-k // size)) if c not in planted)
    np.testing.assert_allclose(space.T[k:, :k], C[:, :k])


def test_second_pass_subtracts_only_what_is_above_rounding():
    p, k = 2000, 700
    rng = np.random.default_rng(1)
    B = np.linalg.qr(rng.standard_normal((p, k + 6)))[0].T
    Q, U = B[:k], B[k:].copy()
    U[2] += 1e-13 * Q[600] + 3e-14 * Q[10]             # two rows leaning on the basis
    U[4] += 1e-10 * Q[300]
    before = U.copy()
    orthogonalise._second_pass(U, Q, np.empty_like(U))
    eps = np.finfo(float).eps
    assert np.abs(U @ Q.T).max() <= orthogonalise._SECOND_PASS_ABOVE * eps
    untouched = [0, 1, 3, 5]
    assert np.array_equal(U[untouched], before[untouched])
    # the level rises from 4 to 16 eps only where the cut is far above what that can move
    assert orthogonalise.second_pass_level(4560 * eps, 1.0, 2000) == 4 * eps
    assert orthogonalise.second_pass_level(110_100 * eps, 1.0, 3456) == 16 * eps
    assert 4 * eps < orthogonalise.second_pass_level(10_000 * eps, 1.0, 100) < 16 * eps


def test_gap_accounts_for_the_residual_bound():
    info = rank_info_from_ritz(np.array([1.0, 1e-3, 1e-15]), 1e-12, 100)
    assert info.rank == 2
    assert info.gap_decades == pytest.approx(np.log10((1e-3 - 2e-12) / (1e-15 + 2e-12)))
    assert residual_bound(1.0, 12) == pytest.approx(10 * np.sqrt(2 / np.pi))   # α = 10 for 12 probes


# ----------------------------------------------------------------- matrix-free == dense
AGREE = [  # (activation, loss, bias, n, d, units, K)
    ("linear", "mse", False, 30, 12, (6, 8), 4),
    ("linear", "cross", False, 40, 10, (5, 3, 7), 5),
    ("linear", "cosh", False, 8, 16, (10,), 3),
    ("linear", "mse", False, 60, 20, (12, 12), 10),         # nK = 600 > p: H_o as p×p
    ("tanh", "mse", False, 10, 8, (6, 6), 3),
    ("tanh", "cross", True, 12, 6, (5, 5), 3),
    ("relu", "mse", False, 40, 8, (6, 6), 3),
    ("relu", "cosh", False, 15, 10, (8, 4), 2),
]


@pytest.mark.parametrize("cfg", AGREE, ids=lambda c: f"{c[0]}-{c[1]}-{'bias' if c[2] else 'nobias'}-n{c[3]}")
def test_matrix_free_ranks_equal_dense_ranks(cfg):
    activation, loss, bias, n, d, units, K = cfg
    base = RunConfig(dataset="gaussian", n=n, dim=d, K=K, units=units, activation=activation, loss=loss,
                     bias=bias, batch_size=max(1, n // 3))
    dense = run(base.replace(method="dense"))
    free = run(base.replace(method="matrix-free"))
    assert free.method == "matrix-free" and dense.method == "dense"
    for name in ("H_L", "H_o", "H_F"):
        assert free.ranks[name].rank == dense.ranks[name].rank, (name, free.method_details[name])
        assert free.ranks[name].tol == pytest.approx(dense.ranks[name].tol, rel=1e-6)
        assert not free.method_details[name]["status"].startswith("not certified")


@pytest.mark.parametrize("free_from", [0, 2**62])
def test_h_l_with_the_factor_freed_or_kept_gives_the_dense_ranks(free_from, monkeypatch):
    # a large A is freed once range(H_o) is taken (H_L's last probes by the compiled product);
    # a small one is kept (H_L v = H_F v + Aᵀ(A v)): both paths, forced here, give the dense ranks
    from hessrank.measure import matrixfree
    monkeypatch.setattr(matrixfree, "_FREE_FACTOR_FROM", free_from)
    base = RunConfig(dataset="gaussian", n=20, dim=8, K=3, units=(10, 10), activation="linear", loss="mse")
    dense = run(base.replace(method="dense"))
    free = run(base.replace(method="matrix-free"))
    for name in ("H_L", "H_o", "H_F"):
        assert free.ranks[name].rank == dense.ranks[name].rank
    assert free.method_details["H_L"]["status"] == "certified"


def test_tolerance_overrides_give_the_dense_ranks():
    """Where the rank depends on the tolerance (tanh, no cliff), both methods cut alike."""
    base = RunConfig(dataset="gaussian", n=30, dim=8, K=3, units=(10, 10), activation="tanh", loss="cross")
    seen = set()
    for rtol, atol in ((1e-1, None), (1e-3, None), (1e-5, 1e-4), (None, 1e-9)):
        cfg = base.replace(rtol=rtol, atol=atol)
        dense, free = run(cfg.replace(method="dense")), run(cfg.replace(method="matrix-free"))
        ranks = {k: dense.ranks[k].rank for k in dense.ranks}
        assert {k: free.ranks[k].rank for k in free.ranks} == ranks, (rtol, atol)
        seen.add(ranks["H_L"])
    assert len(seen) >= 3                     # the overrides do move the cut here


@pytest.mark.parametrize("h_o", ["gram", "square", "sketch"])
def test_every_outer_product_path_gives_the_dense_ranks(h_o, problem):
    model, lossf, theta, X, Y = problem("linear", "cross", False, n=20, d=6, units=(4, 5), K=4)
    dense = {k: numerical_rank(H).rank for k, H in hessians(model, lossf, theta, X, Y).items()}
    free = matrix_free_ranks(model, lossf, theta, X, Y, h_o_path=h_o, block=16, probes=16)
    assert {k: v.rank for k, v in free.ranks.items()} == dense


@pytest.mark.parametrize("h_o", ["gram", "square", "sketch"])
def test_zero_outer_product_on_every_path(h_o, problem):
    # θ = 0 in a linear network without bias: J = 0, so H_o = 0 and range(H_o) adds nothing to H_L's start
    model, lossf, theta, X, Y = problem("linear", "mse", False, n=5, d=5, units=(4,), K=2)
    theta = np.zeros_like(theta)
    dense = {k: numerical_rank(H).rank for k, H in hessians(model, lossf, theta, X, Y).items()}
    free = matrix_free_ranks(model, lossf, theta, X, Y, h_o_path=h_o, block=16, probes=16)
    assert dense["H_o"] == 0
    assert {k: v.rank for k, v in free.ranks.items()} == dense


# ----------------------------------------------------------------- choosing the method
def test_plan_memory_paths_and_capacity():
    assert plan_memory(10_000, 100, 3, 8e9).h_o == "gram"
    assert plan_memory(500, 100, 10, 8e9).h_o == "square"
    assert plan_memory(110_100, 100, 3, 1e9).h_o == "sketch"
    caps = [plan_memory(110_100, 100, 3, b).capacity for b in (2e9, 4e9, 8e9)]
    assert caps[0] < caps[1] < caps[2] <= 110_100
    assert 8 * 110_100 * caps[2] < 8e9


def test_auto_picks_dense_when_it_fits_and_matrix_free_when_not(monkeypatch):
    small = RunConfig(dataset="gaussian", n=12, dim=6, K=3, units=(3, 4))
    res = run(small)                                  # default: auto
    assert small.method == "auto" and res.method == "dense" and res.method_reason.startswith("auto:")
    assert res.ranks["H_L"].rank == res.prediction.H_L
    # a machine where the dense matrices would take 2/3 of the free memory
    monkeypatch.setattr(planning, "available_memory_bytes", lambda: 3 * 2**30)
    monkeypatch.setattr(planning, "dense_memory_bytes", lambda p: 2 * 2**30)
    res = run(small)
    assert res.method == "matrix-free" and "auto: dense would need" in res.method_reason
    assert {k: v.rank for k, v in res.ranks.items()} == {k: getattr(res.prediction, k) for k in res.ranks}


def test_auto_chooses_by_expected_time(monkeypatch):
    """With a predicted basis, auto runs matrix-free where p·k² is well below p³, dense where
    the basis heads for p, and dense (by memory alone) without a prediction."""
    monkeypatch.setattr(planning, "available_memory_bytes", lambda: 20 * 2**30)
    p8040 = planning.plan_method("auto", 8040, 100, 10, basis=2840)
    assert p8040.method == "matrix-free" and p8040.reason.startswith("auto: expected to be faster, ~")
    assert planning.plan_method("auto", 8040, 100, 10, basis=8040).method == "dense"
    assert planning.plan_method("auto", 8040, 100, 10).method == "dense"
    assert planning.plan_method("auto", 400, 20, 5, basis=100).method == "dense"      # compilation dominates
    assert planning.plan_method("dense", 8040, 100, 10, basis=2840).method == "dense"  # an explicit choice stays
    dense_s, sketch_s = planning.expected_seconds(8040, 2840)
    assert sketch_s < dense_s / 3


def test_expected_basis_uses_exact_and_bounds_only():
    from hessrank.measure import expected_basis
    from hessrank.theory import predict_ranks

    linear = predict_ranks(r=25, K=10, units=(5, 10), n=50, d=25)
    assert expected_basis(linear) == 250                          # the worked check of DESIGN.md
    relu = predict_ranks(r=16, K=10, units=(20, 20), activation="relu", n=400, d=16)
    assert expected_basis(relu) is None or relu.kind in ("exact", "bound")
    assert expected_basis(predict_ranks(r=16, K=10, units=(20, 20), activation="tanh")) is None


def test_auto_picks_matrix_free_when_faster_same_ranks():
    cfg = RunConfig(dataset="gaussian", n=100, dim=64, K=10, units=(40, 40))    # p = 4560, basis 2040
    res = run(cfg)
    assert res.method == "matrix-free" and res.method_reason.startswith("auto: expected to be faster")
    assert {k: v.rank for k, v in res.ranks.items()} == {"H_L": 2040, "H_o": 640, "H_F": 1500}


def test_cli_method_flag(capsys):
    args = ["run", "--dataset", "gaussian", "--n", "12", "--dim", "6", "--units", "3,4", "--K", "3"]
    assert main([*args, "--method", "matrix-free", "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["method"] == "matrix-free" and obj["ranks"] == {k: obj["predictions"][k] for k in obj["ranks"]}
    assert obj["method_details"]["H_F"]["certified"] is True
    assert main([*args, "--method", "matrix-free"]) == 0
    out = capsys.readouterr().out
    assert "method matrix-free" in out and "H_F: certified" in out and "Gram matrix" in out
    assert main([*args, "--method", "sparse"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "hessian-rank run: error: --method 'sparse': not one of auto, dense, matrix-free"


def test_matrix_free_too_large_is_refused_before_work(capsys, monkeypatch):
    monkeypatch.setattr(planning, "available_memory_bytes", lambda: 2**30)
    assert main(["run", "--dataset", "gaussian", "--n", "10", "--dim", "2000", "--units", "1000",
                 "--K", "3", "--method", "matrix-free"]) == 2
    err = capsys.readouterr().err
    assert "--method matrix-free" in err and "GiB" in err and err.count("\n") == 1
    with pytest.raises(ConfigError, match="use method matrix-free") as err:
        planning.plan_method("dense", 10**6, 10, 3)   # dense refuses, pointing to matrix-free
    assert err.value.param == "method" and "--" not in str(err.value)
