"""Computed ranks of linear bias-free networks equal the closed-form predictions.

The ranks come from eigenvalues of the computed matrices; the predictions from
the formulas with r measured on the data. Nothing is copied from one to the other.
"""

import os

import numpy as np
import pytest

from hessrank import RunConfig, hessian_ranks, predict_ranks, run
from hessrank.measure import build, measure_model


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
        # ~2 decades; see docs/concepts.md, "Tolerance and gap").
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
#: HESSRANK_FULL_BATTERY=1 runs hessian_ranks(f, params) on every configuration, not every fourth
FULL_BATTERY = os.environ.get("HESSRANK_FULL_BATTERY") == "1"


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
    # the same network through the any-model API (it plans without the theory's predictions):
    # the same engine, the same ranks and tolerances. measure_model, the measurement behind
    # hessian_ranks, on run's own MLP reuses run's compiled programs, so it covers every
    # configuration; hessian_ranks(f, params) wraps the network in a new FunctionModel whose
    # programs compile again (about as long as run's), so that wrapping runs on every fourth
    # (HESSRANK_FULL_BATTERY=1: on all 64).
    data, model, theta = build(cfg)
    same = measure_model(model, theta, data.X, data.Y, loss=cfg.loss, batch_size=cfg.batch_size)
    assert {k: same.ranks[k].rank for k in got} == got
    assert {k: same.ranks[k].tol for k in got} == {k: res.ranks[k].tol for k in got}
    if CONFIGS.index(cfg) % 4 and not FULL_BATTERY:
        return
    other = hessian_ranks(lambda P, X: model.apply(P["theta"], X), {"theta": theta}, data.X, data.Y,
                          loss=cfg.loss, batch_size=cfg.batch_size)
    assert {k: other.ranks[k].rank for k in got} == got
    assert {k: other.ranks[k].tol for k in got} == {k: res.ranks[k].tol for k in got}


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


# --------------------------------------------------------------------------- kinds, bounds, validation
from hessrank.config import ConfigError  # noqa: E402
from hessrank.theory import explain_deficiency  # noqa: E402


def test_kinds_per_matrix_and_the_backwards_compatible_kind():
    p = predict_ranks(r=25, K=10, units=(5, 10))
    assert p.kinds == {"H_L": "exact", "H_o": "exact", "H_F": "exact"} and p.kind == "exact"
    p = predict_ranks(r=25, K=10, units=(5, 10), bias=True, n=50, d=25)
    assert p.kinds == {"H_L": "estimate", "H_o": "exact", "H_F": "estimate"} and p.kind == "estimate"
    assert p.r_affine == 26 and p.H_o == 5 * (26 + 10 - 5) + (10 - 5)   # = q(r+K-q)+K = 160
    p = predict_ranks(r=16, K=10, units=(20, 20), activation="relu", n=400, d=16)
    assert p.kind == "bound" and p.p == 920
    assert (p.H_o, p.bounds["H_o"]) == (920 - 40, "rescaling")  # one direction per hidden neuron
    assert (p.H_L, p.bounds["H_L"]) == (920, "p")
    p = predict_ranks(r=16, K=10, units=(20, 20), activation="relu", n=40, d=16)
    assert (p.H_o, p.bounds["H_o"]) == (400, "nK'")


def test_bounds_by_hand():
    # tanh, cross, bias: p = 3*4+4 + 4*3+3 = 31; shift S = 4 + 1; data span (d+1-r~)M_1 = (3+1-2)*4
    p = predict_ranks(r=2, K=3, units=(4,), loss="cross", activation="tanh", bias=True, n=2, d=3)
    assert p.p == 31 and p.r_affine == 2
    assert (p.H_L, p.bounds["H_L"]) == (31 - 5 - 8, "data-span+softmax-shift")
    assert (p.H_o, p.bounds["H_o"]) == (2 * 2, "nK'")
    # leaky relu without bias, d = 5, r = 3: data span (5-3)*6, rescaling 6+2
    p = predict_ranks(r=3, K=2, units=(6, 2), activation="leaky_relu", n=100, d=5)
    assert p.p == 30 + 12 + 4
    assert (p.H_o, p.bounds["H_o"]) == (46 - 12 - 8, "data-span+rescaling")
    assert (p.H_F, p.bounds["H_F"]) == (46 - 12, "data-span")


@pytest.mark.parametrize("kwargs, message", [
    (dict(units=(5, -1)), "units=(5, -1): every width must be an integer >= 1"),
    (dict(units=(5, 2.5)), "units=(5, 2.5): every width must be an integer >= 1"),
    (dict(units=()), "units=(): need at least one hidden layer"),
    (dict(K=0), "K=0: must be an integer >= 1"),
    (dict(r=-1), "r=-1: must be an integer >= 0"),
    (dict(r=2.0), "r=2.0: must be an integer >= 0"),
    (dict(loss="hinge"), "loss='hinge': not one of mse, cross, cosh"),
    (dict(activation="gelu"), "activation='gelu'"),
    (dict(loss="cross", K=1), "K=1: softmax cross-entropy needs K >= 2"),
    (dict(n=0), "n=0: must be an integer >= 1"),
    (dict(d=2), "r=3: exceeds d = 2"),
])
def test_bad_arguments_raise_one_line_errors_naming_them(kwargs, message):
    args = dict(r=3, K=2, units=(4,))
    args.update(kwargs)
    with pytest.raises(ConfigError) as err:
        predict_ranks(**args)
    assert isinstance(err.value, ValueError)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_explain_deficiency_by_hand():
    # the design's ReLU example: p = 920, rank H_o = 880 at n = 400, 400 at n = 40
    e = explain_deficiency(ranks={"H_o": 880, "H_L": 920}, r=16, K=10, units=(20, 20), n=400, d=16,
                           activation="relu")
    assert e["H_o"].parts["rescaling"] == 40 and e["H_o"].unexplained == 0
    assert e["H_L"].deficiency == 0 and e["H_L"].unexplained == 0
    e = explain_deficiency(ranks={"H_o": 400}, r=16, K=10, units=(20, 20), n=40, d=16, activation="relu")
    assert e["H_o"].parts == {"data_span": 0, "softmax_shift": 0, "rescaling": 40, "sample_count": 480,
                              "linear_structure": 0}
    # linear, worked check of the design: 250 / 150 / 175 of 275, all explained
    e = explain_deficiency(ranks={"H_L": 250, "H_o": 150, "H_F": 175}, r=25, K=10, units=(5, 10), n=50, d=25)
    assert all(x.unexplained == 0 for x in e.values())
    assert e["H_o"].parts["rescaling"] == 15 and e["H_o"].parts["linear_structure"] == 275 - 15 - 150
    # a rank above a bound shows up as a negative remainder
    e = explain_deficiency(ranks={"H_o": 881}, r=16, K=10, units=(20, 20), n=400, d=16, activation="relu")
    assert e["H_o"].unexplained == -1
    with pytest.raises(ConfigError, match="unknown matrix"):
        explain_deficiency(ranks={"H": 3}, r=3, K=2, units=(4,), n=5, d=3)
