"""The benchmark scripts still run against the current API (tiny sizes; no timing is checked).

A benchmark is run by hand, rarely; an API change that breaks one would otherwise be found
only when someone needs its numbers.
"""

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _run(*args):
    done = subprocess.run([sys.executable, str(BENCH / args[0]), *args[1:]], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_profile_matrix_free_on_a_tiny_network():
    out = _run("profile_matrix_free.py", "--units", "3,3", "--K", "2", "--n", "10", "--dim", "4")
    assert "ranks = predictions" in out


def test_bench_eig_on_a_small_matrix():
    out = _run("bench_eig.py", "60", "--repeat", "1", "--no-jax")
    assert "p = 60:" in out


def test_naive_baseline_on_a_tiny_network():
    out = _run("naive.py", "--dataset", "gaussian", "--n", "10", "--dim", "4", "--units", "3,3", "--K", "2")
    assert '"ranks"' in out


def test_bench_products_on_a_tiny_network():
    out = _run("bench_products.py", "--units", "3,3", "--K", "2", "--n", "10", "--dim", "4", "--rows", "6",
               "--repeat", "1")
    assert "p = 27" in out and all(f"{m}:" in out for m in ("H_F", "H_L", "H_o"))
