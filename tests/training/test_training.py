"""Rank along training (issue 15): `hessian-rank train` against `hessian-rank run`, determinism,
SIGKILL-resume, the plot and bad input."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from processes import csv_rows, run_until_rows

from hessrank.cli import main
from hessrank.training import TRAINING_COLUMNS, default_checkpoints

ROOT = Path(__file__).resolve().parents[2]
# a tiny ReLU network on Gaussian data; minibatches of 8 and adam, so the batch order and the optimizer state matter
NET = ["--dataset", "gaussian", "--n", "20", "--dim", "5", "--units", "4,3", "--K", "3", "--activation", "relu"]
TRAIN = ["--optimizer", "adam", "--lr", "0.05", "--steps", "60", "--train-batch", "8", "--checkpoints", "0,1,7,30,60"]


def _rows(path):
    return csv_rows(path)


def _stored(out):
    csvs = sorted(Path(out, "store", "training").rglob("*.csv"))
    assert len(csvs) == 1, csvs
    return csvs[0]


def _untimed(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def _run_json(argv, capsys):
    assert main(["run", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained")
    assert main(["train", *NET, *TRAIN, "--out", str(out)]) == 0
    return out, _stored(out)


def test_rows_have_the_documented_columns_and_the_loss_falls(trained):
    _, csv_path = trained
    rows = _rows(csv_path)
    assert tuple(rows[0]) == TRAINING_COLUMNS
    assert [int(r["step"]) for r in rows] == [0, 1, 7, 30, 60]
    losses = [float(r["loss"]) for r in rows]
    assert losses[-1] < 0.5 * losses[0], losses
    assert all(float(r["lambda_max_L"]) > 0 and float(r["grad_norm"]) > 0 for r in rows)
    meta = json.loads(csv_path.with_suffix(".json").read_text())
    assert meta["complete"] and meta["training"]["optimizer"] == "adam" and meta["training"]["train_batch"] == 8


def test_checkpoint_zero_equals_hessian_rank_run(trained, capsys):
    _, csv_path = trained
    row = _rows(csv_path)[0]
    ref = _run_json(NET, capsys)  # the same options, at the initialisation
    for name, s in (("H_L", "L"), ("H_o", "o"), ("H_F", "F")):
        assert int(row[f"rank_{s}"]) == ref["ranks"][name]
        assert int(row[f"pred_{s}"]) == ref["predictions"][name]
        assert float(row[f"tol_{s}"]) == pytest.approx(ref["tolerance"][name], rel=1e-12)


def test_run_params_on_saved_checkpoints_gives_the_stored_ranks(trained, capsys):
    _, csv_path = trained
    rows = {int(r["step"]): r for r in _rows(csv_path)}
    folder = csv_path.with_name(csv_path.stem + "_params")
    assert sorted(int(p.name[4:].split(".")[0]) for p in folder.glob("step*.npz") if "optstate" not in p.name) == \
        sorted(rows)
    ranks_seen = set()
    for step in (1, 30, 60):
        saved = np.load(folder / f"step{step}.npz", allow_pickle=False)
        assert sorted(saved.files) == ["W1", "W2", "W3"] and saved["W1"].shape == (4, 5)
        ref = _run_json([*NET, "--params", str(folder / f"step{step}.npz")], capsys)
        row = rows[step]
        got = {name: int(row[f"rank_{s}"]) for name, s in (("H_L", "L"), ("H_o", "o"), ("H_F", "F"))}
        assert got == ref["ranks"], step
        assert float(row["tol_L"]) == pytest.approx(ref["tolerance"]["H_L"], rel=1e-12)
        ranks_seen.add(tuple(got.values()))
    # the parameters did move: at the trained point the ReLU pattern differs from the start
    assert not np.array_equal(np.load(folder / "step60.npz")["W1"], np.load(folder / "step1.npz")["W1"])


def test_the_same_command_twice_gives_identical_rows(trained, tmp_path):
    _, csv_path = trained
    assert main(["train", *NET, *TRAIN, "--out", str(tmp_path)]) == 0
    again = _stored(tmp_path)
    assert _untimed(_rows(again)) == _untimed(_rows(csv_path))
    a, b = np.load(again.with_name(again.stem + "_params") / "step60.npz"), \
        np.load(csv_path.with_name(csv_path.stem + "_params") / "step60.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a.files)


def test_plot_training_writes_png_and_pdf_beside_the_data(trained, capsys):
    out, csv_path = trained
    assert main(["plot", "--task", "training", "--out", str(out)]) == 0
    paths = capsys.readouterr().out.split()
    assert [Path(p).suffix for p in paths] == [".png", ".pdf"]
    assert all(Path(p).parent == csv_path.parent and Path(p).stat().st_size > 1000 for p in paths)
    assert main(["plot", "--task", "training", "--optimizer", "sgd", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no stored training run" in err and err.count("\n") == 1


def test_default_checkpoints():
    steps = default_checkpoints(1000)
    assert steps[0] == 0 and steps[-1] == 1000 and 15 <= len(steps) <= 22 and list(steps) == sorted(set(steps))
    assert default_checkpoints(0) == (0,)
    assert default_checkpoints(3) == (0, 1, 2, 3)


KILLED = [*NET, "--optimizer", "adam", "--lr", "0.02", "--steps", "2000", "--train-batch", "8",
          "--checkpoints", ",".join(map(str, range(0, 2001, 200)))]


def _train_command(out):
    return [sys.executable, "-m", "hessrank.cli", "train", *KILLED, "--out", str(out)]


def test_sigkill_mid_training_then_resume_equals_an_uninterrupted_run(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    out = tmp_path / "killed"
    code1, rows1 = run_until_rows(_train_command(out), out, 1, env, jitter=0.1)
    code2, rows2 = run_until_rows(_train_command(out), out, rows1 + 2, env, jitter=0.1)
    assert code1 == code2 == -signal.SIGKILL, "training finished before it could be killed: make it slower"
    assert 1 <= rows1 < rows2 < 11
    done = subprocess.run(_train_command(out), capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "resumed from the state saved at step" in done.stdout  # not replayed from the start
    assert main(["train", *KILLED, "--out", str(tmp_path / "whole")]) == 0  # uninterrupted, in this process
    resumed, uninterrupted = _stored(out), _stored(tmp_path / "whole")
    assert resumed.relative_to(out) == uninterrupted.relative_to(tmp_path / "whole")
    rows = _rows(resumed)
    assert [int(r["step"]) for r in rows] == list(range(0, 2001, 200))  # every checkpoint once, in order
    assert _untimed(rows) == _untimed(_rows(uninterrupted))
    assert not list(out.rglob("*.tmp"))
    sessions = json.loads(resumed.with_suffix(".json").read_text())["sessions"]
    assert len(sessions) == 3 and sessions[0]["finished"] is None and sessions[2]["finished"]


@pytest.mark.parametrize("argv, needle", [
    (["--lr", "0"], "--lr 0.0: the learning rate must be a finite number > 0"),
    (["--lr", "-0.1"], "--lr -0.1"),
    (["--lr", "nan"], "--lr nan"),
    (["--lr", "inf"], "--lr inf"),
    (["--steps", "-1"], "--steps -1"),
    (["--steps", "10", "--checkpoints", "0,5,11"], "--checkpoints '0,5,11': step 11 is beyond --steps 10"),
    (["--checkpoints", "0,x"], "--checkpoints '0,x'"),
    (["--optimizer", "rmsprop"], "--optimizer 'rmsprop': not one of sgd, momentum, adam"),
    (["--train-batch", "0"], "--train-batch 0"),
    (["--train-batch", "21"], "--train-batch 21: larger than the sample size n = 20"),
    (["--model", "net.py:build"], "--model 'net.py:build': no such file 'net.py'"),
    (["--loss", "hinge"], "--loss 'hinge'"),
])
def test_bad_training_input_is_one_line_exit_2_and_writes_nothing(argv, needle, tmp_path, capsys):
    out = tmp_path / "results"
    assert main(["train", *NET, *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert needle in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_a_divergent_run_is_one_line_exit_2_and_keeps_its_checkpoints(tmp_path, capsys):
    argv = ["train", "--dataset", "gaussian", "--n", "20", "--dim", "5", "--units", "4,3", "--K", "3", "--lr", "30",
            "--steps", "300", "--checkpoints", "0,1,2,300", "--out", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]  # the progress lines come before it
    assert len(errors) == 1 and "--lr 30.0: training diverged: the loss is " in errors[0], err
    assert err.endswith(errors[0] + "\n") and "Traceback" not in err
    csv_path = _stored(tmp_path)
    rows = _rows(csv_path)
    assert [r["step"] for r in rows] == ["0", "1", "2"]
    folder = csv_path.with_name(csv_path.stem + "_params")
    assert all((folder / f"step{s}.npz").is_file() for s in (0, 1, 2))
    assert json.loads(csv_path.with_suffix(".json").read_text())["complete"] is False
    assert main(argv) == 2  # again: the stored rows stay, the divergence is reported again
    assert _rows(csv_path) == rows


@pytest.mark.parametrize("change, needle", [
    (lambda a: {"W1": a["W1"][:, :4], "W2": a["W2"], "W3": a["W3"]}, "W1 has shape (4, 4) but the network"),
    (lambda a: {"W1": a["W1"], "W2": a["W2"]}, "no array W3"),
    (lambda a: {**a, "b1": np.zeros(4)}, "an array b1 the network does not have"),
    (lambda a: {**a, "W2": np.full_like(a["W2"], np.nan)}, "W2 holds NaN or inf"),
])
def test_run_params_refuses_parameters_that_do_not_fit(change, needle, trained, tmp_path, capsys):
    _, csv_path = trained
    saved = np.load(csv_path.with_name(csv_path.stem + "_params") / "step0.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, **change({k: saved[k] for k in saved.files}))
    assert main(["run", *NET, "--params", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"--params {bad}: " in err and needle in err and err.count("\n") == 1, err
    assert main(["run", *NET, "--params", str(tmp_path / "missing.npz")]) == 2
    assert "no such file" in capsys.readouterr().err
