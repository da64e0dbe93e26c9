"""Grids on Dask: a real LocalCluster with 2 worker processes, a worker killed mid-grid,
memory limits, failures, resume, the grid file's errors and the grid figure."""

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from datafiles import write_file
from PIL import Image
from processes import csv_rows

from hessrank import ConfigError, RunConfig, run
from hessrank.cli import main
from hessrank.cli.progress import Progress
from hessrank.grid import load_grid, plan_point, run_grid, run_point
from hessrank.store import RESULT_COLUMNS, result_row

LINEAR_GRID = """
# mixed losses, depths and seeds; linear networks without bias
[grid]
dataset = "gaussian"
n = 20
dim = 5
K = 3
loss = ["mse", "cross"]
units = ["4", "2,3"]
seed = [1, 2]
"""


def test_grid_on_a_local_cluster_of_two_processes(tmp_path, capsys):
    grid_file = write_file(tmp_path, "mixed.toml", LINEAR_GRID)
    out = tmp_path / "results"
    assert main(["grid", str(grid_file), "--workers", "2", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "8 points: 8 done (8 run now, 0 stored before), 0 failed, 0 skipped" in captured.out
    assert "exact:    24 of 24 ranks equal their prediction" in captured.out  # 8 points × 3 matrices
    progress = [line for line in captured.err.splitlines() if line.startswith("grid mixed: [")]
    assert len(progress) == 8 and progress[-1].startswith("grid mixed: [8/8]")

    csv_path = next((out / "store" / "grid" / "mixed").glob("grid_*.csv"))
    rows = csv_rows(csv_path)
    assert list(rows[0]) == ["point", "dataset", "n", "dim", "K", "loss", "units", "seed", *RESULT_COLUMNS,
                             "status", "worker", "error"]
    assert len({r["point"] for r in rows}) == 8
    assert [p.name for p in csv_path.parent.glob("*.csv")] == [csv_path.name]  # no blocks asked: no side table
    assert {(r["loss"], r["units"], r["seed"]) for r in rows} == {
        (loss, units, seed) for loss in ("mse", "cross") for units in ("4", "2,3") for seed in ("1", "2")}
    for r in rows:
        assert r["status"] == "done" and r["kind"] == "exact" and r["worker"].startswith("tcp://")
        assert (r["rank_L"], r["rank_o"], r["rank_F"]) == (r["pred_L"], r["pred_o"], r["pred_F"]), r
    # the workers computed what an in-process run computes
    ref = run(RunConfig(dataset="gaussian", n=20, dim=5, K=3, loss="cross", units=(2, 3), seed=2))
    row = next(r for r in rows if (r["loss"], r["units"], r["seed"]) == ("cross", "2,3", "2"))
    assert int(row["rank_o"]) == ref.ranks["H_o"].rank and float(row["tol_L"]) == pytest.approx(ref.ranks["H_L"].tol)

    # a rerun computes nothing (and starts no cluster)
    assert main(["grid", str(grid_file), "--out", str(out)]) == 0
    assert "8 done (0 run now, 8 stored before)" in capsys.readouterr().out
    assert csv_rows(csv_path) == rows

    # the faceted figure: one row of panels per loss, one column per matrix
    assert main(["plot", "--grid", str(grid_file), "--out", str(out)]) == 0
    png = Path(capsys.readouterr().out.split()[0])
    assert png.parent == csv_path.parent and png.name.endswith("_grid.png")
    with Image.open(png) as img:
        assert img.format == "PNG" and img.size[0] > img.size[1] > 300
    import pandas as pd

    from hessrank.plotting import grid_figure

    fig = grid_figure(pd.read_csv(csv_path, dtype=str, keep_default_na=False), load_grid(grid_file))
    assert len(fig.axes) == 2 * 3
    for ax in fig.axes:  # 4 points per loss, all on the diagonal
        (exact,) = [ln for ln in ax.get_lines() if ln.get_label() == "exact prediction"]
        assert len(exact.get_xdata()) == 4
        np.testing.assert_array_equal(exact.get_xdata(), exact.get_ydata())


def test_failed_and_skipped_points_are_stored_and_the_grid_goes_on(cluster, tmp_path, capsys):
    grid_file = write_file(tmp_path, "mixed.toml", """
[grid]
dataset = "gaussian"
n = 20
dim = 5
loss = ["mse", "cross"]
K = [1, 2]
units = ["2", "1500,1500"]
""")
    out = tmp_path / "results"
    address = cluster.scheduler.address
    assert main(["grid", str(grid_file), "--scheduler", address, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "8 points: 3 done (3 run now, 0 stored before), 2 failed, 3 skipped" in text
    assert f"dask:   {address}" in text
    rows = {(r["loss"], r["K"], r["units"]): r for r in csv_rows(next(out.rglob("grid_*.csv")))}
    assert len(rows) == 8
    for units in ("2", "1500,1500"):  # softmax cross-entropy of one output: refused, recorded
        r = rows[("cross", "1", units)]
        assert r["status"] == "failed" and "K=1: with loss 'cross'" in r["error"]
    for key in (("mse", "1", "1500,1500"), ("mse", "2", "1500,1500"), ("cross", "2", "1500,1500")):
        r = rows[key]  # p = 2.26 million: dense Hessians cannot fit a 2 GB worker
        assert r["status"] == "skipped" and "GiB" in r["error"] and "memory limit" in r["error"]
        assert r["rank_L"] == ""
    for key in (("mse", "1", "2"), ("mse", "2", "2"), ("cross", "2", "2")):
        r = rows[key]
        assert r["status"] == "done" and r["rank_L"] == r["pred_L"]

    # a rerun retries what has no finished row, and keeps one row per point
    assert main(["grid", str(grid_file), "--scheduler", address, "--out", str(out)]) == 0
    assert "3 done (0 run now, 3 stored before), 2 failed, 3 skipped" in capsys.readouterr().out
    assert len(csv_rows(next(out.rglob("grid_*.csv")))) == 8


class _KillOneWorker(Progress):
    """A progress report that, when the first point is back, SIGKILLs a worker process
    while it is running a point."""

    def __init__(self, total, client):
        super().__init__(total, desc="grid", stream=open(os.devnull, "w"), bar=False)
        self.client = client
        self.killed = None
        self.running = ()

    def end(self, label, message=""):
        super().end(label, message)
        if self.killed is not None:
            return
        deadline = time.time() + 10
        while time.time() < deadline:
            busy = {addr: keys for addr, keys in self.client.processing().items() if keys}
            if busy:
                addr, self.running = next(iter(busy.items()))
                self.killed = self.client.run(os.getpid, workers=[addr])[addr]
                os.kill(self.killed, signal.SIGKILL)
                return
            time.sleep(0.01)


def test_a_worker_killed_mid_grid_loses_no_point_and_duplicates_none(cluster, tmp_path):
    grid_file = write_file(tmp_path, "fault.toml", """
[grid]
dataset = "gaussian"
n = 24
dim = 6
K = 3
loss = ["mse", "cosh"]
units = ["3,3", "5"]
seed = [3, 4]
""")
    grid = load_grid(grid_file)
    reports = []

    def progress(total):
        reports.append(_KillOneWorker(total, cluster))
        return reports[-1]

    outcome = run_grid(grid, out=tmp_path, client=cluster, progress=progress)
    killed, running = reports[0].killed, reports[0].running
    assert killed is not None and killed not in cluster.run(os.getpid).values()  # it really died
    assert running and all(key.startswith("hessrank-grid-") for key in running)  # in the middle of a point
    rows = csv_rows(outcome.table.csv_path)
    assert len(rows) == len(grid.points) == 8
    assert sorted(r["point"] for r in rows) == sorted(p.id for p in grid.points)  # each exactly once
    for r in rows:
        assert r["status"] == "done", r
        assert (r["rank_L"], r["rank_o"], r["rank_F"]) == (r["pred_L"], r["pred_o"], r["pred_F"])


def test_grid_file_errors_are_one_line(tmp_path, capsys):
    cases = [
        ("[grid\nloss = 1", "not valid TOML"),
        ("loss = ['mse']", "needs a [grid] table"),
        ("[grid]\nlearning_rate = [0.1]", "'learning_rate' is not an option of hessian-rank run"),
        ("[grid]\nloss = []", "loss = []: give at least one value"),
        ("[grid]\nloss = ['mse', 'hinge']", "loss = 'hinge' is invalid at every point: loss='hinge'"),
        ("[grid]\nn = [10, 2.5]", "n = 2.5 is invalid at every point"),
        ("[grid]\nloss = 'cross'\nK = 1", "no point is valid"),
        ("[grid]\nseed = [{a = 1}]", "give numbers, strings or booleans"),
    ]
    for i, (text, needle) in enumerate(cases):
        path = write_file(tmp_path, f"bad{i}.toml", text)
        with pytest.raises(ConfigError, match=None) as info:
            load_grid(path)
        assert needle in str(info.value), (text, str(info.value))
        assert main(["grid", str(path), "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("hessian-rank grid: error: grid file") and err.count("\n") == 1
    assert main(["grid", str(tmp_path / "missing.toml")]) == 2
    assert "cannot be read" in capsys.readouterr().err
    good = write_file(tmp_path, "good.toml", "[grid]\nseed = [1]")
    assert main(["grid", str(good), "--workers", "0"]) == 2
    assert "--workers 0" in capsys.readouterr().err
    assert main(["grid", str(good), "--scheduler", "localhost"]) == 2
    assert "--scheduler 'localhost'" in capsys.readouterr().err
    assert main(["grid", str(good), "--memory-limit", "lots"]) == 2
    assert "--memory-limit 'lots'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_grid_points_are_the_product_in_file_order(tmp_path):
    path = write_file(tmp_path, "g.toml", "[grid]\nbatch-size = 5\nunits = [[2, 3], '4']\nseed = [1, 2]\nbias = "
                                      "[false, true]")
    grid = load_grid(path)
    assert grid.keys == ("batch_size", "units", "seed", "bias")
    assert [(p.config.units, p.config.seed, p.config.bias) for p in grid.points] == [
        (u, s, b) for u in ((2, 3), (4,)) for s in (1, 2) for b in (False, True)]
    assert all(p.config.batch_size == 5 and p.config.dataset == "digits" for p in grid.points)  # run defaults
    assert len({p.id for p in grid.points}) == 8
    assert grid.points[0].label() == "units=2,3, seed=1, bias=false"


def test_plan_point_respects_the_worker_memory_limit():
    cfg = RunConfig(dataset="gaussian", n=10, dim=10, units=(100,), K=10)  # p = 2000: 160 MB dense
    assert plan_point(cfg, (10, 10), None) == (cfg, None)
    assert plan_point(cfg, (10, 10), 2 * 10**9) == (cfg, None)
    # dense does not fit 100 MB, a sketch of 2000 vectors of length 2000 (32 MB) does
    assert plan_point(cfg, (10, 10), 10**8) == (cfg.replace(method="matrix-free"), None)
    config, reason = plan_point(cfg, (10, 10), 10**6)  # neither fits 1 MB
    assert config is None and "p = 2000" in reason and "0.15 GiB" in reason and "sketch vectors" in reason


def test_run_point_plans_within_the_worker_memory_limit():
    cfg = RunConfig(dataset="gaussian", n=10, dim=10, units=(100,), K=10, method="auto")
    capped = run_point(cfg, 3 * 10**8)  # auto, within 300 MB: matrix-free (dense: 160 MB > half)
    free = run_point(cfg)           # auto, the machine's memory: dense
    assert capped["status"] == free["status"] == "done"
    assert capped["method"] == "matrix-free" and free["method"] == "dense"
    assert [capped[f"rank_{s}"] for s in "LoF"] == [free[f"rank_{s}"] for s in "LoF"] == \
        [free[f"pred_{s}"] for s in "LoF"]


def test_run_point_returns_the_row_or_the_error():
    cfg = RunConfig(dataset="gaussian", n=12, dim=4, units=(3,), K=2)
    row = run_point(cfg)
    ref = result_row(run(cfg))
    assert row["status"] == "done" and row["error"] == ""
    assert {k: v for k, v in row.items() if k in ref and k != "seconds"} == \
        {k: v for k, v in ref.items() if k != "seconds"}
    bad = run_point(RunConfig(dataset="digits", n=5000, dim=64, units=(3,), K=10))
    assert bad["status"] == "failed" and "n=5000" in bad["error"] and "\n" not in bad["error"]
