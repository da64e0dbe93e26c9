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
