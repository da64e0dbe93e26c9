"""`hessian-rank spectrum`: JSON, table, stored result and figure, eigenvectors file, one-line errors."""

import json
from pathlib import Path

import numpy as np
import pytest

from hessrank.cli import main

SMALL = ["--dataset", "gaussian", "--n", "10", "--dim", "5", "--units", "3,4", "--K", "3", "--activation", "tanh"]


def test_json_has_every_matrix_with_the_documented_keys_and_the_files_exist(tmp_path, capsys):
    assert main(["spectrum", *SMALL, "--top-eigenvalues", "4", "--json", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    obj = json.loads(out)
    assert out.strip().count("\n") == 0
    for name in ("H_L", "H_o", "H_F"):
        m = obj[name]
        for key in ("top", "trace", "trace_stderr", "trace_products", "density", "outliers", "condition", "rank"):
            assert key in m, key
        assert len(m["top"]) == 4 and m["trace_stderr"] is None       # dense: exact
        assert abs(m["top"][0]) >= abs(m["top"][-1])
        assert set(m["density"]) >= {"x", "y", "probes", "lanczos_steps"}
        assert np.trapezoid(m["density"]["y"], m["density"]["x"]) == pytest.approx(1.0, abs=1e-6)
    # H_L = H_o + H_F: the three traces, computed separately, add up
    assert obj["H_L"]["trace"] == pytest.approx(obj["H_o"]["trace"] + obj["H_F"]["trace"], rel=1e-12)
    files = obj["files"]
    assert any(f.endswith("_density.png") for f in files) and all(Path(f).is_file() for f in files)
    stored = json.loads(open([f for f in files if f.endswith(".json")][0]).read())
    assert stored["task"] == "spectra" and stored["H_L"]["top"] == obj["H_L"]["top"]


def test_table_no_trace_no_density_and_eigenvectors_file(tmp_path, capsys):
    ev = tmp_path / "ev.npz"
    assert main(["spectrum", *SMALL, "--top-eigenvalues", "3", "--no-trace", "--no-density", "--eigenvectors", str(ev),
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "H_L" in out and "top 3 eigenvalues" in out and "outliers" in out
    assert not list(tmp_path.rglob("*_density.png"))
    with np.load(ev, allow_pickle=False) as z:
        assert z["H_L_vectors"].shape == (3, 5 * 3 + 3 * 4 + 4 * 3) and z["H_L_values"].shape == (3,)
        np.testing.assert_allclose(np.linalg.norm(z["H_F_vectors"], axis=1), 1.0, rtol=1e-10)


@pytest.mark.parametrize("args,needle", [
    (["--top-eigenvalues", "0"], "--top-eigenvalues 0: give an integer >= 1"),
    (["--probes", "0"], "--probes 0"),
    (["--lanczos-steps", "x"], "--lanczos-steps"),
    (["--trace-samples", "1"], "--trace-samples 1"),
    (["--eigenvectors", "vectors.txt"], "--eigenvectors 'vectors.txt': give a file name ending in .npz"),
    (["--loss", "hinge"], "--loss 'hinge'"),
    (["--lanczos-steps", "100000000"], "GiB"),
])
def test_bad_flags_are_one_line_exit_2_and_leave_nothing(tmp_path, capsys, args, needle):
    out = tmp_path / "res"
    assert main(["spectrum", *SMALL, "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err, err
    assert err.count("\n") == 0 and "Traceback" not in err
    assert not out.exists()


EXAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "my_model.py") + ":build"
CNN = ["--arch", "cnn", "--conv", "2:3", "--dataset", "gaussian", "--n", "6", "--dim", "16", "--K", "2",
       "--activation", "relu"]


def test_cnn_with_blocks_json_has_the_block_spectra_and_a_table(tmp_path, capsys):
    assert main(["spectrum", *CNN, "--blocks", "layers", "--top-eigenvalues", "3", "--json",
                 "--out", str(tmp_path)]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["model"].startswith("cnn 2:3 on 4×4 images") and list(obj["blocks"]) == ["conv1", "dense"]
    for b in obj["blocks"].values():
        for name in ("H_L", "H_o", "H_F"):
            m = b[name]
            assert len(m["top"]) == 3 and m["tol"] == obj[name]["tol"]
            den = m["density"]                                            # each block's own density
            assert np.trapezoid(den["y"], den["x"]) == pytest.approx(1.0, abs=1e-6)
        assert b["H_F"]["rank"] == 0 and b["H_F"]["trace"] == 0.0       # ReLU: each layer's own H_F block is 0
        assert b["H_F"]["density"]["nodes"] == [0.0] and b["H_F"]["density"]["weights"] == [1.0]
    # the blocks' traces add up to the whole trace (dense: sums of diagonal entries)
    assert sum(b["H_L"]["trace"] for b in obj["blocks"].values()) == pytest.approx(obj["H_L"]["trace"], rel=1e-12)
    assert any("/cnn_2-3_" in f for f in obj["files"]) and all(Path(f).is_file() for f in obj["files"])
    figures = [f for f in obj["files"] if f.endswith("_block_density.png")]
    assert len(figures) == 1 and Path(figures[0]).stat().st_size > 10_000
    assert main(["spectrum", *CNN, "--blocks", "leaves", "--top-eigenvalues", "2", "--no-density",
                 "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "model    cnn 2:3" in text and "diagonal blocks (rank at the whole matrix's tolerance" in text
    assert "\nconv1/w " in text


def test_user_model_equals_the_library(tmp_path, capsys):
    from hessrank import RunConfig, hessian_spectrum
    from hessrank.data import load_dataset
    from hessrank.models import load_user_model

    args = ["--dataset", "gaussian", "--n", "8", "--dim", "4", "--K", "2"]
    assert main(["spectrum", "--model", EXAMPLE, *args, "--top-eigenvalues", "4", "--no-density", "--json",
                 "--out", str(tmp_path)]) == 0
    obj = json.loads(capsys.readouterr().out)
    data = load_dataset(RunConfig(dataset="gaussian", n=8, dim=4, K=2))
    f, params = load_user_model(EXAMPLE, 4, 2, 1)
    ref = hessian_spectrum(f, params, data.X, data.Y, top=4, density=False, seed=1).to_dict()
    for name in ("H_L", "H_o", "H_F"):
        assert obj[name]["top"] == ref[name]["top"] and obj[name]["trace"] == ref[name]["trace"]


@pytest.mark.parametrize("args,needle", [
    (["--arch", "rnn"], "--arch 'rnn': not one of mlp, cnn"),
    (["--model", "nowhere.py:build"], "--model"),
    (["--blocks", "modules"], "--blocks"),
])
def test_bad_model_flags_are_one_line_exit_2(tmp_path, capsys, args, needle):
    out = tmp_path / "res"
    assert main(["spectrum", *SMALL, "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and err.count("\n") == 0 and "Traceback" not in err, err
    assert not out.exists()


def test_builtin_mlp_with_blocks_matrix_free(tmp_path, capsys):
    assert main(["spectrum", *SMALL, "--blocks", "layers", "--method", "matrix-free", "--top-eigenvalues", "3",
                 "--no-density", "--json", "--out", str(tmp_path)]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert list(obj["blocks"]) == ["layer1", "layer2", "layer3"] and "model" not in obj
    for b in obj["blocks"].values():
        for name in ("H_L", "H_o", "H_F"):
            m = b[name]
            assert m["tol"] == obj[name]["tol"] and m["rank"] <= b["size"]
            assert m["trace_stderr"] is None or m["trace_stderr"] >= 0
