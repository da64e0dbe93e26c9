"""Sweeps, grids and training of a CNN or a user's model: rows equal `hessian-rank run` at the same options;
per-block ranks in the side table; identities of configurations stored before these options existed unchanged."""

import csv
import json
from pathlib import Path

import pytest

from hessrank import RunConfig
from hessrank.cli import main
from hessrank.grid import load_grid, run_point
from hessrank.store import config_hash, config_identity
from hessrank.sweeps import make_sweep
from hessrank.training import TrainConfig, training_identity

EXAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "my_model.py") + ":build"
DATA = ["--dataset", "gaussian", "--dim", "16", "--K", "2"]
CNN = ["--arch", "cnn", "--activation", "tanh"]
SUFFIX = {"H_L": "L", "H_o": "o", "H_F": "F"}


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _run_json(argv, capsys):
    assert main(["run", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _only(folder, pattern):
    found = [p for p in Path(folder).rglob(pattern) if not p.name.endswith("_blocks.csv")]
    assert len(found) == 1, found
    return found[0]


def _same_as_run(row, ref):
    for name, s in SUFFIX.items():
        assert int(row[f"rank_{s}"]) == ref["ranks"][name], name
        assert int(row[f"pred_{s}"]) == ref["predictions"][name], name
        assert float(row[f"tol_{s}"]) == pytest.approx(ref["tolerance"][name], rel=1e-12)
    assert row["kind"] == "bound" and int(row["num_params"]) == ref["p"]


def _blocks_same_as_run(block_rows, ref):
    assert [r["block"] for r in block_rows] == list(ref["blocks"])
    for r in block_rows:
        b = ref["blocks"][r["block"]]
        assert int(r["size"]) == b["size"]
        assert {m: int(r[f"rank_{s}"]) for m, s in SUFFIX.items()} == b["ranks"]


def test_cnn_channels_sweep_with_blocks_equals_run(tmp_path, capsys):
    argv = [*DATA, *CNN, "--conv", "1:3,1:2", "--n", "6", "--batch_size", "6"]
    assert main(["sweep", "channels", *argv, "--channels", "1,2", "--blocks", "layers", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    table = _only(tmp_path, "*.csv")
    rows = _rows(table)
    assert [r["channels"] for r in rows] == ["1", "2"]
    blocks = _rows(table.with_name(table.stem + "_blocks.csv"))
    for row in rows:
        c = row["channels"]
        ref = _run_json([*argv, "--conv", f"{c}:3,{c}:2", "--blocks", "layers"], capsys)
        _same_as_run(row, ref)
        _blocks_same_as_run([b for b in blocks if b["channels"] == c], ref)
    assert ref["p"] == (2 * 9) + (2 * 2 * 4) + (2 * 1 * 1 * 2)   # conv1, conv2, dense from 2 maps of 1×1 to K


def test_samplesize_sweep_of_a_user_model_equals_run(tmp_path, capsys):
    argv = ["--model", EXAMPLE, "--dataset", "gaussian", "--dim", "3", "--K", "2", "--batch_size", "3"]
    assert main(["sweep", "samplesize", *argv, "--n-max", "6", "--blocks", "layers", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    table = _only(tmp_path, "*.csv")
    assert table.parent.name == "3xmodel-my_model.buildx2"
    rows = _rows(table)
    blocks = _rows(table.with_name(table.stem + "_blocks.csv"))
    assert [r["n"] for r in rows] == ["3", "6"]
    for row in rows:
        ref = _run_json([*argv, "--n", row["n"], "--blocks", "layers"], capsys)
        _same_as_run(row, ref)
        _blocks_same_as_run([b for b in blocks if b["n"] == row["n"]], ref)
    meta = json.loads(table.with_suffix(".json").read_text())
    assert len(meta["identity"]["model_sha256"]) == 64        # an edited model file is another configuration


@pytest.mark.parametrize("argv,expect", [
    (["width", *CNN], "--arch 'cnn': the width sweep varies the hidden layers of the MLP"),
    (["depth", "--model", EXAMPLE], "--model '" + EXAMPLE + "': the depth sweep varies the hidden layers"),
    (["channels", "--arch", "mlp"], "--arch 'mlp': the channels sweep varies the conv channels of the CNN"),
    (["channels", "--channels", "3:1"], "--channels '3:1': stop 1 is below start 3"),
    (["samplesize", "--conv", "2:3"], "--conv '2:3': only for a convolutional network (arch cnn)"),
])
def test_sweeps_refuse_what_has_no_meaning_in_one_line(tmp_path, capsys, argv, expect):
    n = [] if argv[0] == "samplesize" else ["--n", "4"]
    assert main(["sweep", *argv[:1], *DATA, *n, "--batch_size", "2", *argv[1:], "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert expect in err and err.count("\n") == 1, err
    assert not list(tmp_path.rglob("*.csv"))


def test_grid_of_mlp_and_cnn_points_equals_run(tmp_path, capsys):
    grid_file = tmp_path / "arch.toml"
    grid_file.write_text('[grid]\ndataset = "gaussian"\nn = 6\ndim = 36\nK = 2\nactivation = "tanh"\n'
                         'arch = ["mlp", "cnn"]\nunits = "3"\n')
    grid = load_grid(grid_file)
    assert [p.config.arch for p in grid.points] == ["mlp", "cnn"]
    assert grid.points[0].id != grid.points[1].id
    for point, arch in zip(grid.points, ["mlp", "cnn"]):
        row = run_point(point.config)
        assert row["status"] == "done", row
        ref = _run_json(["--dataset", "gaussian", "--dim", "36", "--K", "2", "--n", "6", "--activation", "tanh",
                         "--units", "3", "--arch", arch], capsys)
        for name, s in SUFFIX.items():
            assert int(row[f"rank_{s}"]) == ref["ranks"][name]
            assert int(row[f"pred_{s}"]) == ref["predictions"][name]
    # the default conv 8:3,8:3 on 6×6 images: maps of 4×4, then 2×2, then the dense layer to K = 2
    assert row["kind"] == "bound" and ref["p"] == 8 * 9 + 8 * 8 * 9 + 8 * 2 * 2 * 2


def test_train_a_cnn_with_blocks_checkpoint_zero_equals_run(tmp_path, capsys):
    argv = [*DATA, *CNN, "--conv", "2:3", "--n", "6"]
    assert main(["train", *argv, "--steps", "3", "--checkpoints", "0,3", "--lr", "0.05", "--blocks", "layers",
                 "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    table = _only(tmp_path, "*.csv")
    rows = _rows(table)
    blocks = _rows(table.with_name(table.stem + "_blocks.csv"))
    ref = _run_json([*argv, "--blocks", "layers"], capsys)
    _same_as_run(rows[0], ref)
    _blocks_same_as_run([b for b in blocks if b["step"] == "0"], ref)
    # the saved parameters of step 3 read back as the CNN's leaves and give the stored ranks
    at3 = _run_json([*argv, "--params", str(table.with_name(table.stem + "_params") / "step3.npz")], capsys)
    assert {m: int(rows[1][f"rank_{s}"]) for m, s in SUFFIX.items()} == at3["ranks"]
    assert float(rows[1]["loss"]) < float(rows[0]["loss"])


def test_identities_of_mlp_configurations_are_those_stored_before_the_network_options():
    # hashes written by main at cbbeb38, before RunConfig had arch/conv/stride/padding/pool/model:
    # a sweep, grid point or training run stored then must be found (resumed) under the same name now
    c = RunConfig(dataset="gaussian", n=8, dim=16, K=2)
    assert config_hash(config_identity(c, task="grid-point")) == "4990dd8166"
    assert make_sweep("width", c, widths="2,3").table("/x", d=16).stem == "linear_glorot_nobias_seed1_7f66d9cd86"
    tanh = c.replace(activation="tanh", bias=True, loss="cross")
    assert make_sweep("samplesize", tanh, n_max=8).table("/x", d=16).stem == "tanh_glorot_bias_seed1_c5927f7208"
    assert config_hash(training_identity(c, TrainConfig(optimizer="adam", lr=0.1), n=8)) == "17b788b129"
    assert not {"arch", "conv", "stride", "padding", "pool", "model"} & set(c.to_dict())
    # a CNN's identity names its layers canonically: conv not given is the default 8:3,8:3
    cnn = c.replace(arch="cnn")
    assert config_identity(cnn) == config_identity(cnn.replace(conv="8:3, 8:3".replace(" ", "")))
    assert config_identity(cnn)["conv"] == "8:3,8:3" and config_identity(cnn) != config_identity(c)
