"""A plain ``hessian-rank run`` imports only what it uses (every module costs start-up time)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import hessrank

#: what a plain run must not load: the libraries of other commands, and the commands' own modules
NOT_FOR_RUN = ("pandas", "matplotlib", "dask", "distributed", "sklearn", "optax", "tomllib",
               "hessrank.grid", "hessrank.plotting", "hessrank.store", "hessrank.sweeps", "hessrank.training")

_RUN_AND_LIST = """
import json, sys
from hessrank.cli import main
status = main(["run", "--dataset", "gaussian", "--n", "12", "--dim", "4", "--units", "3", "--K", "2",
               "--no-compile-cache"])
print(json.dumps({"status": status, "modules": sorted(sys.modules)}))
"""


def test_plain_run_leaves_other_commands_modules_unloaded():
    env = {**os.environ, "PYTHONPATH": str(Path(hessrank.__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", _RUN_AND_LIST], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["status"] == 0
    loaded = [m for m in out["modules"] if any(m == name or m.startswith(name + ".") for name in NOT_FOR_RUN)]
    assert loaded == []


def _cli(*args, stdout=subprocess.PIPE):
    env = {**os.environ, "PYTHONPATH": str(Path(hessrank.__file__).resolve().parents[1])}
    env.pop("PYTHONUNBUFFERED", None)   # buffered as on a user's machine: what is not flushed is lost
    return subprocess.run([sys.executable, "-m", "hessrank.cli", *args], stdout=stdout, stderr=subprocess.PIPE,
                          text=True, env=env, timeout=120)


def test_run_leaves_without_teardown_but_with_everything_written(tmp_path):
    # `run` exits by os._exit after flushing (no interpreter teardown): its whole output, the
    # --spectrum file and the exit status are as a normal exit would leave them
    small = ["--dataset", "gaussian", "--n", "12", "--dim", "4", "--units", "3", "--K", "2", "--no-compile-cache"]
    done = _cli("run", *small, "--json", "--spectrum", str(tmp_path / "s.csv"))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["ranks"] == {m: out["predictions"][m] for m in ("H_L", "H_o", "H_F")}
    rows = (tmp_path / "s.csv").read_text().splitlines()
    assert len(rows) > 3 and rows[-1].count(",") == rows[0].count(",")
    with open(tmp_path / "out.txt", "w") as fh:                     # redirected to a file: flushed too
        assert _cli("run", *small, stdout=fh).returncode == 0
    assert "H_F" in (tmp_path / "out.txt").read_text()
    bad = _cli("run", "--units", "0")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--units" in bad.stderr
