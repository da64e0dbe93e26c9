"""``hessian-rank run`` as several processes (``jax.distributed`` on localhost, CPU collectives):
the same ranks as one process, one writer; and the flags of threads, devices and processes."""

import json
import os
import socket
import subprocess
import sys

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


def test_two_processes_give_the_ranks_of_one(capsys):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)                                   # one CPU device per process
    port = _free_port()
    cmd = [sys.executable, "-m", "hessrank.cli", *ARGS, "--blocks", "layers", "--coordinator", f"127.0.0.1:{port}",
           "--num-processes", "2"]
    procs = [subprocess.Popen([*cmd, "--process-id", str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for i in (1, 0)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    assert outs[0][0] == ""                                      # process 1 prints nothing
    two = json.loads(outs[1][0])                                 # process 0: the result, and nothing else
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


def test_distributed_alone_or_with_the_three():
    with pytest.raises(ConfigError, match="distributed"):
        start_processes(coordinator="h:1", detect=True)


def test_threads_and_devices_are_in_the_method_line(capsys):
    assert main([*ARGS[:-1], "--threads", "1", "--devices", "1"]) == 0
    out = capsys.readouterr().out
    assert "; 1 thread; bases on 1 device; took" in out
