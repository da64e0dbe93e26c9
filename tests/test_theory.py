"""Computed ranks of linear bias-free networks equal the closed-form predictions.

The ranks come from eigenvalues of the computed matrices; the predictions from
the formulas with r measured on the data. Nothing is copied from one to the other.
"""

import numpy as np
import pytest

from hessrank import RunConfig, predict_ranks, run


def _random_configs(count, seed=2024):
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        depth = int(rng.integers(1, 5))                   # 1..4 hidden layers
        units = tuple(int(u) for u in rng.integers(1, 21, size=depth))
        d = int(rng.integers(2, 31))
        # n below d (r = n) or above d (r = d). Not n ≈ d: a near-square Gaussian X has
        # σ_min(X) → 0, and eigenvalues of H_o scale with σ_min², so some fall below the
        # eps-level cut although they are not zero (the reported gap then shrinks to
        # ~2 decades; see README, "when the rank depends on the tolerance").
        n = int(rng.integers(2, max(3, int(0.6 * d)) + 1)) if rng.random() < 0.5 \
            else int(rng.integers(int(1.7 * d) + 1, int(2.5 * d) + 2))
        loss = ["mse", "cross", "cosh"][len(configs) % 3]
        K = int(rng.integers(2 if loss == "cross" else 1, 11))
        if rng.random() < 0.3:                           # force a bottleneck below K and r
            i = int(rng.integers(0, depth))
            units = units[:i] + (int(rng.integers(1, max(2, min(K, d)))),) + units[i + 1:]
        p = d * units[0] + sum(a * b for a, b in zip(units[:-1], units[1:])) + units[-1] * K
        if p > 1200:
            continue
        configs.append(RunConfig(dataset="gaussian", n=n, dim=d, K=K, units=units, loss=loss,
                                 seed=int(rng.integers(0, 1000)), batch_size=int(rng.integers(1, n + 1))))
    return configs


CONFIGS = _random_configs(64)


def test_battery_covers_the_cases_the_issue_asks_for():
    assert len(CONFIGS) >= 60
    assert {c.loss for c in CONFIGS} == {"mse", "cross", "cosh"}
    assert {len(c.units) for c in CONFIGS} == {1, 2, 3, 4}
    assert min(c.K for c in CONFIGS) == 1 and max(c.K for c in CONFIGS) == 10
    assert any(c.n < c.dim for c in CONFIGS) and any(c.n > c.dim for c in CONFIGS)
    assert any(min(c.units) < c.K for c in CONFIGS)
    assert any(min(c.units) < min(c.n, c.dim) for c in CONFIGS)


def _config_id(c):
    return f"{c.loss}-d{c.dim}-n{c.n}-u{'x'.join(map(str, c.units))}-K{c.K}"


@pytest.mark.parametrize("cfg", CONFIGS, ids=_config_id)
def test_linear_ranks_equal_predictions(cfg):
    res = run(cfg)
    assert res.prediction.kind == "exact"
    assert res.r == min(cfg.n, cfg.dim)  # Gaussian data is generic
    got = {k: res.ranks[k].rank for k in ("H_L", "H_o", "H_F")}
    want = {k: getattr(res.prediction, k) for k in ("H_L", "H_o", "H_F")}
    assert got == want, (cfg, {k: res.ranks[k].gap_decades for k in got})


def test_worked_check_of_design():
    """n = 50, d = r = 25, widths 5,10, K = 10, mse: 250 / 150 / 175 out of p = 275."""
    res = run(RunConfig(dataset="gaussian", n=50, dim=25, K=10, units=(5, 10), loss="mse"))
    assert res.p == 275
    assert (res.ranks["H_L"].rank, res.ranks["H_o"].rank, res.ranks["H_F"].rank) == (250, 150, 175)


def test_formula_examples_by_hand():
    # hand-evaluated instances of the formulas (q, s, M, L worked out on paper)
    p = predict_ranks(r=25, K=10, units=(5, 10), loss="mse")
    assert (p.q, p.s, p.M, p.L) == (5, 10, 15, 3)
    p = predict_ranks(r=3, K=10, units=(20,), loss="cross")   # q = s = r = 3, K' = 9
    assert (p.H_o, p.H_F, p.H_L) == (3 * 9, 2 * 3 * 20 + 2 * 9 - 2 * 9, 2 * 3 * 20 - 18 + 3 * 12)
    assert predict_ranks(r=5, K=2, units=(4,), activation="relu").kind == "estimate"
    assert predict_ranks(r=5, K=2, units=(4,), bias=True).kind == "estimate"
