"""``hessian-rank run`` as several processes (``jax.distributed`` on localhost, CPU collectives):
the same ranks as one process, one writer; and the flags of threads, devices and processes."""

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hessrank import ConfigError
from hessrank.cli import main
from hessrank.measure.processes import start_processes

ARGS = ["run", "--dataset", "gaussian", "--n", "15", "--dim", "5", "--units", "6,6", "--K", "3", "--method",
        "matrix-free", "--json"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_processes(args: list, outs=None) -> list:
    """``hessian-rank args`` as processes 0 and 1 on 127.0.0.1 (``outs``: each one's ``--out``):
    ``[(stdout, stderr)]`` of process 0, then 1, once both succeeded."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)                                   # one CPU device per process
    cmd = [sys.executable, "-m", "hessrank.cli", *args, "--coordinator", f"127.0.0.1:{_free_port()}",
           "--num-processes", "2"]
    procs = [subprocess.Popen([*cmd, "--process-id", str(i), *(["--out", str(outs[i])] if outs else [])],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for i in (0, 1)]
    found = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in found]
    return found


SMALL = ["--dataset", "gaussian", "--n", "9", "--dim", "4", "--K", "2", "--activation", "tanh", "--method",
         "matrix-free"]


def test_spectrum_and_a_sweep_as_two_processes_print_and_store_what_one_does(tmp_path, capsys):
    # the spectrum's products: each process its share of the samples, added after each product
    spectrum = ["spectrum", *SMALL, "--units", "4,3", "--json", "--top-eigenvalues", "3", "--no-density", "--blocks",
                "layers"]
    (out0, err0), (out1, _) = _two_processes(spectrum, [tmp_path / "p0", tmp_path / "p1"])
    assert out1 == "" and not (tmp_path / "p1").exists()          # process 1 neither prints nor writes
    two = json.loads(out0)
    assert main([*spectrum, "--out", str(tmp_path / "one")]) == 0
    one = json.loads(capsys.readouterr().out)
    assert [Path(f).exists() for f in two["files"]] == [True, True]
    for m in ("H_L", "H_o", "H_F"):
        assert two[m]["rank"] == one[m]["rank"] and two[m]["certified"] == one[m]["certified"]
        assert two[m]["tol"] == pytest.approx(one[m]["tol"], rel=1e-10)
        np.testing.assert_allclose(two[m]["top"], one[m]["top"], rtol=1e-10)
        assert two[m]["trace"] == pytest.approx(one[m]["trace"], rel=1e-10)
    assert len(one["blocks"]) == 3 and {b: {m: v[m]["rank"] for m in ("H_L", "H_o", "H_F")}
                                        for b, v in two["blocks"].items()} == \
        {b: {m: v[m]["rank"] for m in ("H_L", "H_o", "H_F")} for b, v in one["blocks"].items()}

    sweep = ["sweep", "width", *SMALL, "--widths", "3,4", "--batch-size", "9"]
    (out0, _), (out1, _) = _two_processes(sweep, [tmp_path / "s0", tmp_path / "s1"])
    assert out1 == "" and not (tmp_path / "s1").exists()
    assert main([*sweep, "--out", str(tmp_path / "s")]) == 0
    capsys.readouterr()

    def rows(root):
        [table] = [f for f in root.rglob("*.csv")]
        return [{k: v for k, v in r.items() if k.startswith(("width", "rank_", "pred_"))}
                for r in csv.DictReader(table.open())]

    assert rows(tmp_path / "s0") == rows(tmp_path / "s") and len(rows(tmp_path / "s")) == 2
    assert "2 point(s) computed now" in out0


def test_two_processes_give_the_ranks_of_one(capsys):
    (out0, _), (out1, _) = _two_processes([*ARGS, "--blocks", "layers"])
    assert out1 == ""                                            # process 1 prints nothing
    two = json.loads(out0)                                       # process 0: the result, and nothing else
    assert main([*ARGS, "--blocks", "layers"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert two["devices"] == 2 and one["devices"] == 0           # the bases were sharded over both processes
    # each process took the products over its own 7 or 8 samples, summed: the ranks of all 15
    assert two["ranks"] == one["ranks"] == {"H_L": 69, "H_o": 15, "H_F": 63}     # the linear network's formulas
    assert two["certified"] and one["certified"]
    assert {b: v["ranks"] for b, v in two["blocks"].items()} == {b: v["ranks"] for b, v in one["blocks"].items()}
    for m, tol in one["tolerance"].items():
        assert two["tolerance"][m] == pytest.approx(tol, rel=1e-10)
    assert [two["method_details"][m]["status"] for m in ("H_L", "H_F")] == \
        [one["method_details"][m]["status"] for m in ("H_L", "H_F")]


@pytest.mark.parametrize("extra,needle", [
    (["--threads", "0"], "--threads 0: must be a whole number of threads, 1 or more"),
    (["--threads", str(os.cpu_count() + 1)], f"--threads {os.cpu_count() + 1}: this machine has {os.cpu_count()} "
                                             "logical CPUs"),
    (["--devices", "9"], "--devices 9: must be a whole number from 1 to 1"),
    (["--coordinator", "localhost"], "--coordinator 'localhost': must be HOST:PORT"),
    (["--coordinator", "127.0.0.1:5000", "--num-processes", "2"], "--process-id: missing"),
    (["--coordinator", "127.0.0.1:5000", "--num-processes", "2", "--process-id", "2"],
     "--process-id 2: must be a whole number from 0 to 1"),
    (["--num-processes", "0", "--process-id", "0", "--coordinator", "h:1"], "--num-processes 0: must be"),
])
def test_bad_flags_are_one_line_naming_the_flag(extra, needle, capsys):
    assert main([*ARGS, *extra]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("args,needle", [
    (["spectrum", "--n", "6", "--units", "3", "--threads", "0"], "--threads 0: must be a whole number of threads"),
    (["spectrum", "--n", "6", "--units", "3", "--devices", "9"], "--devices 9: must be a whole number from 1 to 1"),
    (["sweep", "width", "--n", "12", "--widths", "3", "--devices", "9"], "--devices 9: must be a whole number from 1"),
    (["sweep", "depth", "--n", "12", "--depths", "1", "--threads", "0"], "--threads 0: must be a whole number"),
    (["sweep", "samplesize", "--n-max", "20", "--coordinator", "localhost"], "--coordinator 'localhost': must be"),
    (["train", "--n", "6", "--devices", "9"], "--devices 9: must be a whole number from 1 to 1"),
    (["train", "--coordinator", "127.0.0.1:5000", "--num-processes", "2", "--process-id", "0"],
     "--coordinator '127.0.0.1:5000': training runs as one process"),
    (["train", "--distributed"], "--distributed True: training runs as one process"),
    (["grid", "g.toml", "--num-processes", "2"], "--num-processes 2: a grid runs its points on Dask workers"),
    (["grid", "g.toml", "--devices", "9"], "--devices 9: must be a whole number from 1 to 1"),
    (["grid", "g.toml", "--threads", "0"], "--threads 0: must be a whole number"),
])
def test_every_command_refuses_bad_thread_device_and_process_flags_in_one_line(args, needle, capsys, tmp_path):
    small = ["--dataset", "gaussian", "--dim", "3", "--K", "2"] if args[0] != "grid" else []
    assert main([*args, *small, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1, err
    assert not any(tmp_path.iterdir())                          # nothing written


def test_grid_hands_threads_and_devices_to_every_point(tmp_path, monkeypatch, capsys):
    import hessrank.grid

    seen = {}

    def fake_run_grid(grid, **kwargs):
        seen.update(kwargs)
        raise KeyboardInterrupt   # stop before any worker starts

    monkeypatch.setattr(hessrank.grid, "run_grid", fake_run_grid)
    grid = tmp_path / "g.toml"
    grid.write_text("[grid]\nn = 6\nunits = ['3']\n")
    assert main(["grid", str(grid), "--out", str(tmp_path / "out"), "--threads", "1", "--devices", "1"]) == 130
    assert seen["threads"] == 1 and seen["devices"] == 1


def test_distributed_alone_or_with_the_three():
    with pytest.raises(ConfigError, match="distributed"):
        start_processes(coordinator="h:1", detect=True)


def test_threads_and_devices_are_in_the_method_line(capsys):
    assert main([*ARGS[:-1], "--threads", "1", "--devices", "1"]) == 0
    out = capsys.readouterr().out
    assert "; 1 thread; bases on 1 device; took" in out
