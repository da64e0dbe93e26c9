"""The benchmark scripts still run against the current API (tiny sizes; no timing is checked).

A benchmark is run by hand, rarely; an API change that breaks one would otherwise be found
only when someone needs its numbers.
"""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

import hessrank
from hessrank.measure import build

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
# the benchmarks write their tables for the Performance page; tiny runs must not replace them
_ENV = {**os.environ, "HESSRANK_REPORT_DIR": tempfile.mkdtemp(prefix="hessrank-reports-")}


def _run(*args):
    done = subprocess.run([sys.executable, str(BENCH / args[0]), *args[1:]], capture_output=True, text=True,
                          timeout=300, env=_ENV)
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


def _bench_peers(*args):
    return subprocess.run([sys.executable, str(BENCH / "bench_peers.py"), *args], capture_output=True, text=True,
                          timeout=300, env=_ENV)


def test_bench_peers_exports_the_network_and_data_hessrank_runs(tmp_path):
    # the peer must see hessrank's own X, Y and θ: its outputs from the file's leaves,
    # computed the slow, obvious way, are hessrank's outputs
    done = _bench_peers("--export-only", str(tmp_path), "--sizes", "", "--net", "3,3:2")
    assert done.returncode == 0, done.stderr[-2000:]
    cfg = hessrank.RunConfig(dataset="gaussian", n=100, dim=64, K=2, units=(3, 3), loss="mse").validate()
    data, model, theta = build(cfg)
    with np.load(tmp_path / "net-3-3-2.npz", allow_pickle=False) as npz:
        assert npz["widths"].tolist() == [64, 3, 3, 2] and str(npz["activation"]) == "linear" and not npz["bias"]
        np.testing.assert_array_equal(npz["X"], data.X)
        np.testing.assert_array_equal(npz["Y"], data.Y)
        np.testing.assert_array_equal(np.concatenate([npz[f"W{l}"].ravel() for l in (1, 2, 3)]), theta)
        f = npz["X"] @ npz["W1"].T @ npz["W2"].T @ npz["W3"].T
    np.testing.assert_allclose(f, np.asarray(model.apply(theta, data.X)), rtol=1e-12)
    assert f"p = {model.num_params}" in done.stdout


def test_bench_peers_without_a_peer_interpreter_says_so_and_exits_2(tmp_path):
    done = _bench_peers("--peer-python", str(tmp_path / "no-python"), "--sizes", "", "--net", "3,3:2")
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stdout.count("\n") == 1 and "no peer" in done.stdout


@pytest.mark.skipif(not os.environ.get("HESSRANK_PEER_PYTHON"),
                    reason="set HESSRANK_PEER_PYTHON to an interpreter with torch and curvlinops-for-pytorch")
def test_bench_peers_curvlinops_ranks_equal_ours_on_a_tiny_network():
    done = _bench_peers("--peer-python", os.environ["HESSRANK_PEER_PYTHON"], "--sizes", "", "--net", "3,3:2")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "all ranks identical and as predicted: True" in done.stdout


def test_bench_products_on_a_tiny_network():
    out = _run("bench_products.py", "--units", "3,3", "--K", "2", "--n", "10", "--dim", "4", "--rows", "6",
               "--repeat", "1")
    assert "p = 27" in out and all(f"{m}:" in out for m in ("H_F", "H_L", "H_o"))


def test_report_states_date_machine_command_and_table(tmp_path, monkeypatch):
    monkeypatch.setenv("HESSRANK_REPORT_DIR", str(tmp_path))
    sys.path.insert(0, str(BENCH))
    try:
        import _report
    finally:
        sys.path.remove(str(BENCH))
    table = _report.markdown_table(["p", "wall"], [[4560, "2.3 s"]], "rr")
    path = _report.write_report("example", "python3 benchmarks/bench_speed.py --skip-535k", table, notes="A note.")
    text = path.read_text(encoding="utf-8")
    assert path == tmp_path / "example.md"
    assert "* **Command:** `python3 benchmarks/bench_speed.py --skip-535k`" in text
    assert f"{os.cpu_count()} cores, {_report.cpu_model()}" in text and "BLAS: " in text
    assert "| p | wall |\n| ---: | ---: |\n| 4560 | 2.3 s |" in text and text.rstrip().endswith("A note.")
    assert re.search(r"\* \*\*Date:\*\* \d{4}-\d\d-\d\d \d\d:\d\d UTC", text)


def test_the_performance_page_includes_every_report_and_each_names_its_command():
    docs = BENCH.parent / "docs"
    page = (docs / "performance.md").read_text(encoding="utf-8")
    reports = sorted((docs / "performance").glob("*.md"))
    assert reports
    for report in reports:
        assert f'--8<-- "docs/performance/{report.name}"' in page
        head = report.read_text(encoding="utf-8").splitlines()[:5]
        assert head[0].startswith("<!-- written by benchmarks/")
        assert any(line.startswith("* **Command:** `python3 benchmarks/") for line in head)


def test_cnn_channels_sweeps_fits_and_draws_on_a_tiny_network(tmp_path):
    figure = tmp_path / "cnn.png"
    out = _run("cnn_channels.py", "--dataset", "gaussian", "--dim", "36", "--K", "2", "--n", "6", "--channels", "1,2",
               "--out", str(tmp_path / "results"), "--figure", str(figure))
    assert out.count("growth exponent a in rank ∝ p^a (all points)") == 2
    assert figure.is_file() and figure.stat().st_size > 1000
    assert "relu CNN" in out and "linear CNN" in out
