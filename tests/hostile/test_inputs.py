"""Hostile command lines and configurations: one line, exit status 2, nothing allocated or written."""

import os
import sys

import pytest

from hessrank.atomicio import atomic_write_text, check_writable
from hessrank.cli import main
from hessrank.config import RunConfig
from hessrank.errors import ConfigError, StoreError

SMALL = ["--dataset", "gaussian", "--n", "12", "--dim", "6", "--units", "3,4", "--K", "3"]


def _one_line_refusal(capsys, argv, *, flag):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and flag in err, err
    return err


@pytest.mark.parametrize("argv,flag", [
    (["--units", "100000,100000", "--dim", "4", "--n", "4", "--K", "2"], "--method"),   # p planned before θ
    (["--units", "3", "--dim", "4", "--n", "100000000000"], "--n"),
    (["--units", "3", "--dim", "10000000000", "--n", "4"], "--dim"),
    (["--units", "3", "--dim", "4", "--n", "99999999999999999999999"], "--n"),
    (["--units", "3", "--dim", "6000", "--n", "1000000"], "--n"),                       # data larger than memory
    (["--units", "3", "--dim", "4", "--n", "4", "--K", "1000000"], "--method"),
    (["--units", "3", "--dim", "4", "--n", "4", "--seed", "-1"], "--seed"),
])
def test_sizes_are_refused_before_allocation(capsys, argv, flag):
    _one_line_refusal(capsys, ["run", "--dataset", "gaussian", *argv], flag=flag)


@pytest.mark.parametrize("argv,flag", [
    (["samplesize", "--n-max", "2000000000", "--batch_size", "1"], "--n-max"),
    (["width", "--widths", "1:100000000000"], "--widths"),
    (["depth", "--depths", "1:100000"], "--depths"),
])
def test_sweep_ranges_are_counted_before_they_are_made(capsys, tmp_path, argv, flag):
    _one_line_refusal(capsys, ["sweep", *argv, "--dataset", "gaussian", "--dim", "4", "--out", str(tmp_path)],
                      flag=flag)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fields,param", [
    ({"n": True}, "n"), ({"K": 2.0}, "K"), ({"rtol": "1e-3"}, "rtol"), ({"atol": float("nan")}, "atol"),
    ({"seed": -1}, "seed"), ({"seed": 2**64}, "seed"), ({"units": (3, True)}, "units"), ({"units": [3]}, "units"),
    ({"bias": 1}, "bias"), ({"dataset": 5}, "dataset"), ({"label_noise": True}, "label_noise"),
    ({"n": 10**30}, "n"), ({"units": (1,) * 5000}, "units"),
])
def test_run_config_refuses_wrong_types_at_validate(fields, param):
    with pytest.raises(ConfigError) as info:
        RunConfig(**fields).validate()
    assert info.value.param == param


def _hostile_paths(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere" / "x.csv")
    return [a_file / "x.csv", a_file / "sub" / "x.csv", fifo, tmp_path / "loop1", tmp_path / "dangling", tmp_path]


def test_outputs_that_cannot_be_written_are_refused_before_the_work(tmp_path, capsys):
    for path in _hostile_paths(tmp_path):
        before = sorted(os.listdir(tmp_path))
        err = _one_line_refusal(capsys, ["run", *SMALL, "--spectrum", str(path)], flag="--spectrum")
        assert "H_L" not in capsys.readouterr().out, err
        assert sorted(os.listdir(tmp_path)) == before


def test_device_nodes_are_never_replaced(tmp_path):
    # only checked, never written: a regression must not replace the machine's /dev/full
    for device in ("/dev/full", "/dev/null"):
        if os.path.exists(device):
            with pytest.raises(StoreError, match="not a regular file"):
                check_writable(device, param="spectrum")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(StoreError, match="not a regular file"):
        atomic_write_text(fifo, "x")
    assert list(tmp_path.iterdir()) == [fifo]


def test_a_closed_stdout_ends_without_traceback(tmp_path):
    import subprocess

    env = {**os.environ, "PYTHONPATH": "src", "JAX_PLATFORMS": "cpu"}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run(f"{sys.executable} -m hessrank.cli run {' '.join(SMALL)} | head -c 1",
                          shell=True, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
