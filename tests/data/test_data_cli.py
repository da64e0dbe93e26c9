"""Data through the command line: `hessian-rank datasets`, one-line errors, user files, real Fashion-MNIST."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from datafiles import isolate, write_idx, write_mnist

from hessrank.cli import main
from hessrank.data import locate

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
ON_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@pytest.fixture
def env(tmp_path, monkeypatch):
    """An isolated machine: no data anywhere except what a test writes under tmp_path/d."""
    isolate(monkeypatch, tmp_path)
    labels = np.arange(30) % 3
    images = np.random.default_rng(4).integers(0, 256, (30, 28, 28), dtype=np.uint8)
    write_mnist(tmp_path / "d" / "MNIST" / "raw", images, labels)
    return tmp_path


def _one_line_error(capsys, cmd="run"):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"hessian-rank {cmd}: error: ")
    return err


def test_datasets_lists_status_where_and_the_command(env, capsys):
    assert main(["datasets", "--data-dir", str(env / "d")]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line and not line.startswith(" ")}
    assert "available" in rows["MNIST"] and str(env / "d" / "MNIST" / "raw") in rows["MNIST"]
    assert "--data-dir" in rows["MNIST"]
    assert "missing" in rows["FashionMNIST"]
    assert f"hessian-rank datasets --download FashionMNIST --data-dir {env / 'd'}" in rows["FashionMNIST"]
    assert "missing" in rows["CIFAR10"] and "available" in rows["digits"]
    assert f"--download writes to: {env / 'd'}" in out
    assert main(["datasets", "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in obj["datasets"]}
    assert by_name["MNIST"]["available"] is False
    assert by_name["MNIST"]["get"] == "hessian-rank datasets --download MNIST"
    assert obj["download_to"] == str(env / "cache" / "hessrank")


def test_datasets_download_of_a_present_set_is_a_no_op(env, capsys):
    assert main(["datasets", "--download", "mnist", "--data-dir", str(env / "d")]) == 0
    assert "MNIST: already available in" in capsys.readouterr().err
    assert main(["datasets", "--download", "digits"]) == 2
    assert "--download 'digits': not one of MNIST, FashionMNIST, CIFAR10" in _one_line_error(capsys, "datasets")


def _npz(path, X, y):
    np.savez(path, X=X, y=y)
    return str(path)


@pytest.mark.parametrize("args,needle", [
    (["--dataset", "CIFAR10"], "--dataset CIFAR10: files not found; looked in"),
    (["--dataset", "FashionMNIST"], "hessian-rank datasets --download FashionMNIST"),
    (["--dataset", "MNIST", "--n", "31", "--K", "3", "--dim", "16"], "--n 31: the data set 'MNIST' has only 30 "
                                                                     "samples"),
    (["--dataset", "MNIST", "--K", "4", "--dim", "16"], "--K 4: the data set 'MNIST' has only 3 classes"),
    (["--dataset", "MNIST", "--K", "3", "--dim", "15"], "--dim 15: images are resized to sqrt(dim) x sqrt(dim)"),
    (["--dataset", "MNIST", "--K", "3", "--resize", "cubic"], "--resize 'cubic'"),
    (["--dataset", "MNIST", "--K", "3", "--label-noise", "2"], "--label-noise 2.0: must be a fraction"),
    (["--dataset", "emnist"], "--dataset 'emnist': not one of digits, gaussian, MNIST, FashionMNIST, CIFAR10 or "
                              "a path"),
    (["--dataset", "missing.npz"], "--dataset 'missing.npz': no such file"),
])
def test_run_data_errors_are_one_line_exit_2(env, capsys, args, needle):
    assert main(["run", "--data-dir", str(env / "d"), *args]) == 2
    assert needle in _one_line_error(capsys)


def test_run_corrupt_file_is_one_line(env, capsys):
    raw = env / "d" / "MNIST" / "raw"
    data = (raw / "train-images-idx3-ubyte.gz").read_bytes()
    (raw / "train-images-idx3-ubyte.gz").write_bytes(data[: len(data) - 100])
    assert main(["run", "--data-dir", str(env / "d"), "--dataset", "MNIST", "--K", "3", "--dim", "16"]) == 2
    assert "corrupt or truncated gzip" in _one_line_error(capsys)
    write_idx(raw / "train-images-idx3-ubyte.gz", np.zeros((29, 28, 28)), gz=True)
    assert main(["run", "--data-dir", str(env / "d"), "--dataset", "MNIST", "--K", "3", "--dim", "16"]) == 2
    assert "expected 29 labels" in _one_line_error(capsys)


def test_run_user_file_errors(env, capsys):
    nan = _npz(env / "nan.npz", np.array([[0.0, np.nan], [1, 2]]), np.array([0, 1]))
    assert main(["run", "--dataset", nan, "--K", "2"]) == 2
    assert "X holds 1 NaN or infinite values (first at index (0, 1))" in _one_line_error(capsys)
    (env / "lab.csv").write_text("0.5,1,0\n0.25,2,1.5\n")
    assert main(["run", "--dataset", str(env / "lab.csv"), "--K", "2"]) == 2
    assert "labels y must be integers" in _one_line_error(capsys)
    ok = _npz(env / "ok.npz", np.eye(4), np.array([0, 1, 0, 1]))
    assert main(["run", "--dataset", ok, "--K", "2", "--dim", "5"]) == 2
    err = _one_line_error(capsys)
    assert "--dim 5: the data set" in err and "has d = 4" in err


@pytest.mark.parametrize("suffix", ["npz", "csv"])
def test_run_user_file_end_to_end(tmp_path, capsys, suffix):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((23, 6))
    y = rng.integers(0, 3, 23) + 10  # labels 10, 11, 12 -> classes 0, 1, 2
    path = tmp_path / f"mine.{suffix}"
    if suffix == "npz":
        np.savez(path, X=X, y=y)
    else:
        path.write_text("".join(",".join([*(repr(float(v)) for v in x), str(t)]) + "\n" for x, t in zip(X, y)))
    assert main(["run", "--dataset", str(path), "--units", "4,3", "--K", "3", "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["n"] == 23 and obj["d"] == 6 and obj["r"] == 6  # --n defaults to all rows, --dim to the file's d
    assert obj["ranks"] == {k: obj["predictions"][k] for k in ("H_L", "H_o", "H_F")}
    assert obj["dataset_source"].startswith(f"user file {path}")


def test_real_fashion_mnist_end_to_end(tmp_path, monkeypatch, capsys):
    """Debian's dataset-fashion-mnist, found without any flag; the computed ranks equal the linear predictions."""
    if not all((DEBIAN_FASHION / f).is_file() for f in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")):
        if not ON_CI:
            pytest.skip("Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
    isolate(monkeypatch, tmp_path)
    monkeypatch.setattr(locate, "DEBIAN_DATASETS", Path("/usr/share/datasets"))
    argv = ["run", "--dataset", "FashionMNIST", "--dim", "16", "--n", "60", "--units", "6,6", "--K", "10", "--json"]
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    obj = json.loads(captured.out)
    assert obj["dataset_source"] == f"{DEBIAN_FASHION}, default search path"
    assert (obj["n"], obj["d"], obj["p"]) == (60, 16, 16 * 6 + 6 * 6 + 6 * 10)
    assert obj["predictions"]["kind"] == "exact"
    assert obj["ranks"] == {k: obj["predictions"][k] for k in ("H_L", "H_o", "H_F")}
    assert min(obj["gap_decades"].values()) > 5  # a clear cliff, not a tolerance accident
