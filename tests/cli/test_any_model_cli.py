"""`hessian-rank run --blocks / --model / --arch cnn`: JSON against the slow reference, errors in one line."""

import json
from pathlib import Path

import pytest
from reference import count_above, default_tol, ref_pytree_matrices

from hessrank import RunConfig
from hessrank.cli import main
from hessrank.data import load_dataset
from hessrank.models import build_cnn, load_user_model

EXAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "my_model.py") + ":build"


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _reference_ranks(f, params, data, loss):
    H_L, H_o, _, _ = ref_pytree_matrices(f, params, data.X, data.Y, loss)
    return {m: count_above(H, default_tol(H)) for m, H in (("H_L", H_L), ("H_o", H_o), ("H_F", H_L - H_o))}


def test_blocks_layers_of_a_linear_mlp(capsys):
    out = _json(capsys, ["run", "--dataset", "gaussian", "--n", "20", "--dim", "6", "--units", "4,3", "--K", "3",
                         "--blocks", "layers", "--json"])
    assert list(out["blocks"]) == ["layer1", "layer2", "layer3"]
    assert [b["size"] for b in out["blocks"].values()] == [24, 12, 9]
    for b in out["blocks"].values():
        assert b["ranks"]["H_F"] == 0 and b["ranks"]["H_L"] == b["ranks"]["H_o"] > 0
        assert b["tolerance"]["H_F"] == out["tolerance"]["H_F"]        # the whole matrix's tolerance
    assert main(["run", "--dataset", "gaussian", "--n", "20", "--dim", "6", "--units", "4", "--K", "3",
                 "--blocks", "leaves"]) == 0
    text = capsys.readouterr().out
    assert "diagonal blocks, ranks counted at the tolerance of the whole matrix" in text and "\nW2 " in text


@pytest.mark.parametrize("method", ["dense", "matrix-free"])
def test_user_model_file_equals_reference(capsys, method):
    argv = ["run", "--model", EXAMPLE, "--dataset", "gaussian", "--n", "8", "--dim", "3", "--K", "2", "--loss",
            "cross", "--method", method, "--blocks", "layers", "--json"]
    out = _json(capsys, argv)
    data = load_dataset(RunConfig(dataset="gaussian", n=8, dim=3, K=2, loss="cross"))
    f, params = load_user_model(EXAMPLE, 3, 2, 1)
    assert out["ranks"] == _reference_ranks(f, params, data, "cross")
    assert out["method"] == method and set(out["blocks"]) == {"inp", "res", "out"}


def test_builtin_cnn_equals_reference(capsys):
    argv = ["run", "--arch", "cnn", "--conv", "2:2,2:2", "--dataset", "gaussian", "--n", "6", "--dim", "16", "--K",
            "2", "--activation", "tanh", "--bias", "--blocks", "leaves", "--json"]
    out = _json(capsys, argv)
    data = load_dataset(RunConfig(dataset="gaussian", n=6, dim=16, K=2))
    f, params = build_cnn(16, 2, "2:2,2:2", activation="tanh", bias=True, seed=1)
    assert out["ranks"] == _reference_ranks(f, params, data, "mse")
    assert out["p"] == (2 * 4 + 2) + (2 * 2 * 4 + 2) + (2 * 2 * 2 * 2 + 2)
    assert out["predictions"]["kind"] == "bound" and out["predictions"]["H_o"] == min(out["p"], 12)
    assert list(out["blocks"]) == ["conv1/b", "conv1/w", "conv2/b", "conv2/w", "dense/b", "dense/w"]


@pytest.mark.parametrize("argv,expect", [
    (["--model", "/nonexistent/net.py:build"], "--model '/nonexistent/net.py:build': no such file"),
    (["--model", EXAMPLE.replace(":build", ":nope")], "has no function 'nope'"),
    (["--model", "examples/my_model.py"], "give FILE.py:FUNCTION"),
    (["--arch", "rnn"], "--arch 'rnn': not one of mlp, cnn"),
    (["--arch", "cnn", "--conv", "8x3"], "--conv '8x3': give channels:kernel"),
    (["--arch", "cnn", "--dim", "10"], "--dim 10: a CNN needs square images"),
    (["--arch", "cnn", "--conv", "2:9"], "leaves no pixels"),
    (["--arch", "cnn", "--padding", "full"], "--padding 'full': not one of valid, same"),
    (["--blocks", "rows"], "--blocks"),
])
def test_bad_model_options_one_line_exit_2(capsys, argv, expect):
    assert main(["run", "--dataset", "gaussian", "--n", "5", "--dim", "16", "--K", "2", *argv]) == 2
    err = capsys.readouterr().err
    assert expect in err and err.count("\n") == 1


def test_user_model_with_bad_outputs(tmp_path, capsys):
    path = tmp_path / "bad.py"
    path.write_text("import numpy as np\n"
                    "def wrong(d, K, seed):\n    return (lambda P, X: X @ P['w']), {'w': np.ones((d, K + 1))}\n"
                    "def nan(d, K, seed):\n    return (lambda P, X: X @ P['w'] * np.nan), {'w': np.ones((d, K))}\n"
                    "def leaf(d, K, seed):\n    return (lambda P, X: X @ P['w']), {'w': np.ones((d, K)), 's': 'x'}\n"
                    "def pair(d, K, seed):\n    return 3\n")
    for name, expect in (("wrong", "outputs of shape (5, 3)"), ("nan", "not finite"), ("leaf", "leaf is a str"),
                         ("pair", "must return (f, params)")):
        assert main(["run", "--model", f"{path}:{name}", "--dataset", "gaussian", "--n", "5", "--dim", "4",
                     "--K", "2"]) == 2
        err = capsys.readouterr().err
        assert expect in err and err.startswith("hessian-rank run: error: --model ") and err.count("\n") == 1
