"""`hessian-rank run` with the theory's kinds: the table, `--json` kinds/bounds/explain and `--explain`.

Every check compares a measured rank with a prediction: exact ones must be equal, bounds
never exceeded, and the explained parts plus the unexplained rest must add up to p − rank.
"""

import dataclasses
import json

import pytest

from hessrank import RunConfig, run
from hessrank.cli import main
from hessrank.cli.format import format_explain, format_result

MATRICES = ("H_L", "H_o", "H_F")
GAUSS = ["--dataset", "gaussian", "--n", "40", "--dim", "6", "--K", "3"]


def _json(capsys, args):
    assert main(["run", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _check_explain_adds_up(obj):
    for m in MATRICES:
        e = obj["explain"][m]
        assert e["deficiency"] == obj["p"] - obj["ranks"][m]
        assert sum(e["parts"].values()) + e["unexplained"] == e["deficiency"]


def test_relu_json_kinds_are_bounds_and_never_exceeded(capsys):
    obj = _json(capsys, [*GAUSS, "--units", "4,3", "--activation", "relu"])
    assert obj["kinds"] == dict.fromkeys(MATRICES, "bound")
    assert obj["predictions"]["kind"] == "bound"
    assert obj["bounds"]["H_o"] == "rescaling"  # generic data: r = d, no data-span directions
    for m in MATRICES:
        assert obj["ranks"][m] <= obj["predictions"][m], m
    # by hand: p = 6·4 + 4·3 + 3·3 = 45, 7 hidden neurons, nK = 120
    assert obj["p"] == 45 and obj["predictions"]["H_o"] == 45 - 7 and obj["predictions"]["H_L"] == 45
    _check_explain_adds_up(obj)
    assert obj["explain"]["H_o"]["parts"]["rescaling"] == 7
    assert obj["explain"]["H_o"]["unexplained"] == obj["predictions"]["H_o"] - obj["ranks"]["H_o"] >= 0


def test_relu_table_shows_kind_bound_and_explain(capsys):
    assert main(["run", *GAUSS, "--units", "4,3", "--activation", "relu", "--explain"]) == 0
    out = capsys.readouterr().out
    assert "bound: H_o ≤ p − rescaling symmetry (one per hidden neuron or channel)" in out
    obj = _json(capsys, [*GAUSS, "--units", "4,3", "--activation", "relu"])
    rows = {line.split()[0]: line for line in out.splitlines() if line.split()[:1] in (["H_L"], ["H_o"], ["H_F"])}
    table, explain = {}, {}
    for line in out.splitlines():
        words = line.split()
        if words and words[0] in MATRICES:
            (explain if words[0] in table else table)[words[0]] = words
    for m in MATRICES:
        # matrix, rank, "≤", bound, "bound", tolerance, gap
        assert table[m][1:5] == [str(obj["ranks"][m]), "≤", str(obj["predictions"][m]), "bound"], rows[m]
        assert "> bound!" not in rows[m] and "≠" not in rows[m]
        e = obj["explain"][m]
        assert [int(w) for w in explain[m][1:]] == [e["deficiency"], *e["parts"].values(), e["unexplained"]]
    assert "p − rank explained" in out


def test_cross_entropy_net_has_softmax_shift_bounds(capsys):
    obj = _json(capsys, [*GAUSS, "--units", "5,4", "--loss", "cross", "--activation", "tanh", "--bias"])
    assert obj["kinds"] == dict.fromkeys(MATRICES, "bound")
    assert all("softmax-shift" in obj["bounds"][m] for m in MATRICES)
    p = 6 * 5 + 5 + 5 * 4 + 4 + 4 * 3 + 3
    assert obj["p"] == p and obj["predictions"]["H_L"] == p - (4 + 1)  # top width + the last bias
    for m in MATRICES:
        assert obj["ranks"][m] <= obj["predictions"][m], m
        assert obj["explain"][m]["parts"]["softmax_shift"] == 5
    _check_explain_adds_up(obj)


def test_linear_bias_net_h_o_is_exact_and_equals_the_measurement(capsys):
    obj = _json(capsys, [*GAUSS, "--units", "4,2", "--bias"])
    assert obj["kinds"]["H_o"] == "exact" and obj["ranks"]["H_o"] == obj["predictions"]["H_o"]
    assert obj["theory"]["r_affine"] == 7  # n = 40 > d = 6: [X, 1] has rank d + 1
    assert {obj["kinds"]["H_L"], obj["kinds"]["H_F"]} <= {"estimate", "bound"}
    assert obj["explain"]["H_o"]["unexplained"] == 0
    _check_explain_adds_up(obj)
    assert main(["run", *GAUSS, "--units", "4,2", "--bias"]) == 0
    out = capsys.readouterr().out
    h_o = next(line for line in out.splitlines() if line.startswith("H_o"))
    assert h_o.split()[1:4] == [str(obj["ranks"]["H_o"])] * 2 + ["exact"] and "≠" not in h_o
    assert "H_o exact" in out and "r̃ = rank [X, 1] = 7" in out


def test_linear_no_bias_is_exact_everywhere(capsys):
    obj = _json(capsys, [*GAUSS, "--units", "4,2"])
    assert obj["kinds"] == dict.fromkeys(MATRICES, "exact") and obj["bounds"] == {}
    assert obj["ranks"] == {m: obj["predictions"][m] for m in MATRICES}
    assert all(obj["explain"][m]["unexplained"] == 0 for m in MATRICES)


@pytest.fixture(scope="module")
def relu_result():
    return run(RunConfig(dataset="gaussian", n=40, dim=6, K=3, units=(4, 3), activation="relu"))


def test_a_rank_above_its_bound_is_marked_a_violation(relu_result):
    pred = relu_result.prediction
    below = relu_result.ranks["H_o"].rank - 1  # pretend the bound were one below the measurement
    bad = dataclasses.replace(relu_result, prediction=dataclasses.replace(pred, H_o=below))
    line = next(ln for ln in format_result(bad).splitlines() if ln.startswith("H_o"))
    assert line.rstrip().endswith("> bound!") and f"≤ {below}" in line
    good = next(ln for ln in format_result(relu_result).splitlines() if ln.startswith("H_o"))
    assert "bound!" not in good


def test_an_exact_mismatch_is_marked_not_equal():
    res = run(RunConfig(dataset="gaussian", n=12, dim=6, K=3, units=(3, 4)))
    pred = res.prediction
    bad = dataclasses.replace(res, prediction=dataclasses.replace(pred, H_F=pred.H_F + 1))
    line = next(ln for ln in format_result(bad).splitlines() if ln.startswith("H_F"))
    assert line.rstrip().endswith("≠") and "bound" not in line


def test_explain_text_reports_negative_unexplained_as_above_the_theory(relu_result):
    info = relu_result.ranks["H_o"]
    ranks = dict(relu_result.ranks, H_o=dataclasses.replace(info, rank=relu_result.p))  # a rank of p: too high
    text = format_explain(dataclasses.replace(relu_result, ranks=ranks))
    line = next(ln for ln in text.splitlines() if ln.startswith("H_o"))
    assert line.split()[1] == "0" and "(measured above the theory)" in line


# --------------------------------------------------------------------------- the built-in CNN

CNN_GAUSS = ["--arch", "cnn", "--dataset", "gaussian", "--n", "30", "--dim", "36", "--K", "3"]


def test_one_layer_linear_cnn_is_exact_for_h_o_and_h_f(capsys):
    obj = _json(capsys, [*CNN_GAUSS, "--conv", "8:3", "--activation", "linear"])
    assert obj["kinds"]["H_o"] == obj["kinds"]["H_F"] == "exact"
    for m in MATRICES:
        if obj["kinds"][m] == "exact":
            assert obj["ranks"][m] == obj["predictions"][m], m
    # by hand: r_in = 30 (n < 36), K' = 3: H_o = 90; patches 3×3 of rank 9, s = 3, P = 16: H_F = 2·8·9
    assert obj["predictions"]["H_o"] == 90 and obj["predictions"]["H_F"] == 144
    _check_explain_adds_up(obj)
    assert all(obj["explain"][m]["unexplained"] == 0 for m in MATRICES if obj["kinds"][m] == "exact")


def test_deep_cnn_table_names_its_bounds_and_explains(capsys):
    assert main(["run", *CNN_GAUSS, "--conv", "3:3,3:3", "--activation", "linear", "--explain"]) == 0
    out = capsys.readouterr().out
    assert "bound: H_o ≤ K'·r_in" in out and "bound: H_F ≤ 2 Σ over layer pairs" in out
    assert "> bound!" not in out and "p − rank explained" in out
    obj = _json(capsys, [*CNN_GAUSS, "--conv", "3:3,3:3", "--activation", "relu", "--loss", "cross"])
    assert obj["kinds"] == dict.fromkeys(MATRICES, "bound")
    assert obj["bounds"]["H_F"] == "layer-pairs" and "softmax-shift" in obj["bounds"]["H_L"]
    for m in MATRICES:
        assert obj["ranks"][m] <= obj["predictions"][m], m
    _check_explain_adds_up(obj)


def test_global_pool_cnn_is_the_mlp_on_mean_patches(capsys):
    obj = _json(capsys, [*CNN_GAUSS, "--conv", "2:3", "--activation", "linear", "--pool", "global"])
    assert obj["config"]["pool"] == "global"
    assert obj["kinds"] == dict.fromkeys(MATRICES, "exact")
    assert obj["p"] == 2 * 9 + 2 * 3
    for m in MATRICES:
        assert obj["ranks"][m] == obj["predictions"][m], m
