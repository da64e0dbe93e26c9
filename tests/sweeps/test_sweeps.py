"""Sweeps over sample size, width and depth: the paper's commands, the store layout,
ranks against predictions, resume (SIGKILL included), locks, progress and bad input."""

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from processes import csv_rows, run_until_rows

from hessrank import ConfigError, RunConfig, StoreError, run
from hessrank.cli import main, script_main
from hessrank.cli.progress import Progress
from hessrank.data import DATASETS
from hessrank.store import RESULT_COLUMNS, ResultTable
from hessrank.sweeps import make_sweep, parse_range, run_sweep

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = {"samplesize": "rank_vs_sample_size.py", "width": "rank_vs_width.py", "depth": "rank_vs_depth.py"}
KEY = {"samplesize": "n", "width": "width", "depth": "depth"}

# The paper's commands (DESIGN.md), with small ranges so that CI stays fast.
PAPER = {
    "samplesize": ["--units", "5,5", "--loss", "mse", "--batch_size", "5", "--init", "glorot", "--K", "3"],
    "width": ["--loss", "mse", "--batch_size", "10", "--init", "glorot", "--K", "3"],
    "depth": ["--loss", "mse", "--batch_size", "10", "--init", "glorot", "--K", "3", "--width", "4"],
}
SMALL = {"samplesize": ["--n-max", "25"], "width": ["--widths", "2:4:2", "--n", "30"],
         "depth": ["--depths", "1:2:1", "--n", "30"]}


def _rows(path):
    return csv_rows(path)


def _store_files(out, task, dataset):
    """The CSV and JSON of the one sweep stored under the documented folder."""
    folder = Path(out) / "store" / task / "mse" / dataset
    csvs = sorted(folder.rglob("*.csv"))
    assert len(csvs) == 1, csvs
    return csvs[0], csvs[0].with_suffix(".json")


def _fashion_mnist_known():
    return any(name.lower() == "fashionmnist" for name in DATASETS)


DATASET_CASES = [
    pytest.param("gaussian", "9", id="gaussian"),
    pytest.param("FashionMNIST", "16", id="FashionMNIST", marks=pytest.mark.skipif(
        not _fashion_mnist_known() and not os.environ.get("CI"),
        reason="the data layer does not know FashionMNIST yet (runs in CI, where it must)")),
]


@pytest.mark.parametrize("dataset,dim", DATASET_CASES)
@pytest.mark.parametrize("task", ["samplesize", "width", "depth"])
def test_paper_command_writes_store_and_figure_with_exact_ranks(task, dataset, dim, tmp_path, capsys):
    out = str(tmp_path / "results")
    args = [*PAPER[task], "--dataset", dataset, "--dim", dim, *SMALL[task], "--out", out]
    assert script_main(SCRIPT[task], ("sweep", task), args) == 0
    csv_path, json_path = _store_files(out, task, dataset)
    # the documented layout: samplesize under <d>x<units…>x<K>, depth under <width>
    sub = {"samplesize": f"{dim}x5x5x3", "width": None, "depth": "4"}[task]
    assert csv_path.parent == Path(out, "store", task, "mse", dataset, *([sub] if sub else []))
    rows = _rows(csv_path)
    assert list(rows[0]) == [KEY[task], *RESULT_COLUMNS]
    want_points = {"samplesize": [5, 10, 15, 20, 25], "width": [2, 4], "depth": [1, 2]}[task]
    assert [int(r[KEY[task]]) for r in rows] == want_points
    for r in rows:  # linear, no bias: every measured rank equals its prediction
        assert r["kind"] == "exact"
        assert (r["rank_L"], r["rank_o"], r["rank_F"]) == (r["pred_L"], r["pred_o"], r["pred_F"]), r
        assert float(r["tol_L"]) > 0 and float(r["seconds"]) >= 0
    meta = json.loads(json_path.read_text())
    assert meta["task"] == task and meta["config"]["dataset"] == dataset and meta["complete"] is True
    assert meta["sessions"][0]["provenance"]["jax"] and meta["sessions"][0]["host"]
    assert meta["command"].startswith(f"hessian-rank sweep {task} ")
    capsys.readouterr()

    plot_args = ["--loss", "mse", "--dataset", dataset, "--task", task, "--dim", dim, "--K", "3", "--out", out]
    plot_args += {"samplesize": ["--units", "5,5"], "width": [], "depth": ["--width", "4"]}[task]
    assert script_main("plotting.py", ("plot",), plot_args) == 0
    printed = capsys.readouterr().out.split()
    suffix = "rank" if task == "samplesize" else "rank_per_param"  # --normalize: on for width and depth
    stem = csv_path.with_name(f"{csv_path.stem}_{suffix}")
    assert printed == [str(stem) + ".png", str(stem) + ".pdf"]
    assert Path(printed[0]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Path(printed[1]).read_bytes()[:5] == b"%PDF-"


def test_sample_size_rows_equal_independent_runs(tmp_path):
    """Accumulated batch by batch, each row equals a from-scratch run on the first n samples."""
    base = RunConfig(dataset="digits", dim=16, K=4, units=(3, 6), batch_size=8, loss="cross")
    outcome = run_sweep(make_sweep("samplesize", base, n_max=24), out=tmp_path)
    assert [int(r["n"]) for r in outcome.rows] == [8, 16, 24]
    for row in outcome.rows:
        ref = run(base.replace(n=int(row["n"])))
        assert int(row["r"]) == ref.r
        assert int(row["num_params"]) == ref.p
        for name, s in (("H_L", "L"), ("H_o", "o"), ("H_F", "F")):
            assert int(row[f"rank_{s}"]) == ref.ranks[name].rank
            assert float(row[f"tol_{s}"]) == pytest.approx(ref.ranks[name].tol, rel=1e-12)


@pytest.mark.parametrize("activation", ["linear", "tanh"])
def test_matrix_free_sample_size_sweep_equals_the_dense_one(activation, tmp_path):
    """--method matrix-free measures each n on its first n samples: same rows as dense."""
    base = RunConfig(dataset="digits", dim=16, K=4, units=(6, 6), batch_size=8, loss="mse", activation=activation)
    dense = run_sweep(make_sweep("samplesize", base.replace(method="dense"), n_max=24), out=tmp_path).rows
    mf = run_sweep(make_sweep("samplesize", base.replace(method="matrix-free"), n_max=24), out=tmp_path).rows
    assert [r["method"] for r in dense] == ["dense"] * 3 and [r["method"] for r in mf] == ["matrix-free"] * 3
    for a, b in zip(dense, mf):
        assert (a["n"], a["r"], a["num_params"]) == (b["n"], b["r"], b["num_params"])
        assert [a[f"rank_{s}"] for s in "LoF"] == [b[f"rank_{s}"] for s in "LoF"]
        if activation == "linear":
            assert [b[f"rank_{s}"] for s in "LoF"] == [b[f"pred_{s}"] for s in "LoF"]


def test_r_grows_with_n_and_predictions_follow(tmp_path):
    # d = 12 > first sample sizes: r = n until it saturates at d
    base = RunConfig(dataset="gaussian", dim=12, K=3, units=(4, 4), batch_size=4)
    rows = run_sweep(make_sweep("samplesize", base, n_max=20), out=tmp_path).rows
    assert [int(r["r"]) for r in rows] == [4, 8, 12, 12, 12]
    assert all(r["rank_L"] == r["pred_L"] and r["rank_o"] == r["pred_o"] and r["rank_F"] == r["pred_F"]
               for r in rows)


def test_parse_range():
    assert parse_range("4:36:4", param="widths") == (4, 8, 12, 16, 20, 24, 28, 32, 36)
    assert parse_range("1:9:1", param="depths") == tuple(range(1, 10))
    assert parse_range("3:5", param="depths") == (3, 4, 5)
    assert parse_range("16,4,8,4", param="widths") == (4, 8, 16)
    assert parse_range("7", param="widths") == (7,)
    for bad in ("8:4:2", "4:8:0", "a:b", "1:2:3:4", "0,4", "4,x", ""):
        with pytest.raises(ConfigError, match="widths="):
            parse_range(bad, param="widths")


def test_resume_computes_only_missing_points_and_matches_one_go(tmp_path):
    base = RunConfig(dataset="gaussian", n=30, dim=6, K=3, batch_size=10)
    first = run_sweep(make_sweep("width", base, widths="2,6"), out=tmp_path / "a")
    assert first.computed == [2, 6]
    again = run_sweep(make_sweep("width", base, widths="2:6:2"), out=tmp_path / "a")
    assert again.computed == [4] and again.stored_before == 2
    whole = run_sweep(make_sweep("width", base, widths="2:6:2"), out=tmp_path / "b")
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop(again.rows) == drop(whole.rows)
    assert drop(_rows(again.table.csv_path)) == drop(whole.rows)
    meta = json.loads(again.table.json_path.read_text())
    assert [s["computed"] for s in meta["sessions"]] == [[2, 6], [4]]
    assert run_sweep(make_sweep("width", base, widths="2:6:2"), out=tmp_path / "a").computed == []


def test_different_configurations_never_share_a_file(tmp_path):
    base = RunConfig(dataset="gaussian", n=30, dim=6, K=3, batch_size=10)
    variants = [base, base.replace(seed=2), base.replace(activation="tanh"), base.replace(rtol=1e-8),
                base.replace(batch_size=5), base.replace(n=20)]
    paths = [run_sweep(make_sweep("width", v, widths="2"), out=tmp_path).table.csv_path for v in variants]
    assert len(set(paths)) == len(variants)
    assert len({p.parent for p in paths}) == 1  # same documented folder, different files
    for path, v in zip(paths, variants):
        meta = json.loads(path.with_suffix(".json").read_text())
        assert meta["config"]["seed"] == v.seed and meta["config"]["activation"] == v.activation
        assert len(_rows(path)) == 1
    # sample-size sweeps with another n-max (other Gaussian data) go to another file too
    s = RunConfig(dataset="gaussian", dim=6, K=3, units=(2, 2), batch_size=10)
    a = run_sweep(make_sweep("samplesize", s, n_max=20), out=tmp_path).table.csv_path
    b = run_sweep(make_sweep("samplesize", s, n_max=30), out=tmp_path).table.csv_path
    assert a != b and a.parent == b.parent


def test_a_file_of_another_configuration_is_refused(tmp_path):
    base = RunConfig(dataset="gaussian", n=30, dim=6, K=3, batch_size=10)
    table = run_sweep(make_sweep("width", base, widths="2"), out=tmp_path).table
    meta = json.loads(table.json_path.read_text())
    meta["identity"]["seed"] = 99
    table.json_path.write_text(json.dumps(meta))
    before = table.csv_path.read_text()
    with pytest.raises(StoreError, match="belongs to another configuration"):
        run_sweep(make_sweep("width", base, widths="2,4"), out=tmp_path)
    assert table.csv_path.read_text() == before


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path, capsys):
    base = RunConfig(dataset="gaussian", n=30, dim=6, K=3, batch_size=10)
    sweep = make_sweep("width", base, widths="2")
    table = sweep.table(tmp_path, d=6)
    with table.lock():
        with pytest.raises(StoreError, match="another process is writing"):
            run_sweep(sweep, out=tmp_path)
        args = ["sweep", "width", "--dataset", "gaussian", "--n", "30", "--dim", "6", "--K", "3",
                "--batch_size", "10", "--widths", "2", "--out", str(tmp_path)]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("hessian-rank sweep: error: --out: another process") and err.count("\n") == 1
    assert not table.csv_path.exists()
    assert run_sweep(sweep, out=tmp_path).computed == [2]  # the lock is free again


def _sweep_command(out):
    return [sys.executable, str(ROOT / SCRIPT["samplesize"]), "--dataset", "gaussian", "--dim", "20",
            "--units", "15,15", "--K", "5", "--batch_size", "4", "--n-max", "64", "--out", str(out)]


def test_sigkill_mid_sweep_then_resume_equals_an_uninterrupted_run(tmp_path):
    out = tmp_path / "killed"
    # one BLAS thread: quick on a loaded machine, and the same arithmetic in every process
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    code1, rows1 = run_until_rows(_sweep_command(out), out, 1, env)
    code2, rows2 = run_until_rows(_sweep_command(out), out, rows1 + 2, env)
    assert code1 == code2 == -signal.SIGKILL, "the sweep finished before it could be killed: make it slower"
    assert 1 <= rows1 < rows2 < 16
    done = subprocess.run(_sweep_command(out), capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "point(s) computed now" in done.stdout

    whole = subprocess.run(_sweep_command(tmp_path / "whole"), capture_output=True, text=True, env=env)
    assert whole.returncode == 0, whole.stderr
    csv_path = next(out.rglob("*.csv"))
    whole_path = next((tmp_path / "whole").rglob("*.csv"))
    assert csv_path.relative_to(out) == whole_path.relative_to(tmp_path / "whole")
    resumed = _rows(csv_path)
    keys = [int(r["n"]) for r in resumed]
    assert keys == list(range(4, 65, 4))  # every point exactly once, in order
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop(resumed) == drop(_rows(whole_path))
    assert all(r["rank_L"] == r["pred_L"] and r["rank_o"] == r["pred_o"] and r["rank_F"] == r["pred_F"]
               for r in resumed)
    assert not list(out.rglob("*.tmp"))
    sessions = json.loads(csv_path.with_suffix(".json").read_text())["sessions"]
    assert len(sessions) == 3 and sessions[0]["finished"] is None and sessions[2]["finished"]


def test_progress_plain_lines_and_terminal_bar():
    stream = io.StringIO()
    with Progress(2, desc="width sweep", stream=stream) as bar:
        for w in (4, 8):
            bar.begin(f"width={w}")
            bar.end(f"width={w}", "H_L 1/1")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[1].startswith("width sweep: [2/2] width=8: H_L 1/1; elapsed") and "ETA" in lines[1]

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    tty = Terminal()
    with Progress(2, desc="depth sweep", stream=tty) as bar:
        bar.begin("depth=1")
        bar.end("depth=1")
        bar.begin("depth=2")
    text = tty.getvalue()
    assert "depth sweep" in text and "1/2" in text and "depth=2" in text and "<" in text  # tqdm: elapsed<ETA


def test_sweep_logs_progress_lines_when_not_a_terminal(tmp_path, capsys):
    args = ["sweep", "depth", "--dataset", "gaussian", "--n", "20", "--dim", "5", "--K", "2", "--width", "3",
            "--depths", "1:2", "--batch_size", "10", "--out", str(tmp_path)]
    assert main(args) == 0
    captured = capsys.readouterr()
    log = captured.err.splitlines()
    assert [line.split(":")[0] for line in log] == ["depth sweep", "depth sweep"]
    assert "[2/2] depth=2" in log[1] and "ETA" in log[1]
    assert "exact:    6 of 6 ranks equal their prediction" in captured.out  # 2 points × 3 matrices


@pytest.mark.parametrize("argv,needle", [
    (["sweep", "width", "--units", "3,3"], "--units '3,3': the width sweep sets the hidden widths itself"),
    (["sweep", "depth", "--units", "3"], "--units '3': the depth sweep"),
    (["sweep", "samplesize", "--n", "40"], "--n 40: the sample-size sweep sets n itself"),
    (["sweep", "samplesize", "--n-max", "0"], "--n-max 0"),
    (["sweep", "samplesize", "--n-max", "20", "--batch_size", "30"], "--batch_size 30"),
    (["sweep", "width", "--widths", "8:4:2"], "--widths '8:4:2'"),
    (["sweep", "width", "--widths", "4,zero"], "--widths '4,zero'"),
    (["sweep", "depth", "--depths", "0:3"], "--depths '0:3'"),
    (["sweep", "depth", "--width", "0"], "--width 0"),
    (["sweep", "width", "--loss", "hinge"], "--loss 'hinge'"),
    (["sweep", "width", "--dataset", "nope"], "--dataset 'nope'"),
    (["sweep", "width", "--n", "30", "--batch_size", "40"], "--batch_size 40"),
    (["sweep", "height"], "height"),
    (["sweep", "width", "--dataset", "gaussian", "--dim", "3000", "--widths", "3000"], "GiB"),
])
def test_bad_sweep_input_is_one_line_exit_2_and_writes_nothing(argv, needle, tmp_path, capsys):
    out = tmp_path / "results"
    assert main([*argv, "--out", str(out)] if argv[1] != "height" else argv) == 2
    err = capsys.readouterr().err
    assert needle in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_root_scripts_run_without_installing(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    common = ["--dataset", "gaussian", "--dim", "6", "--K", "2", "--loss", "cosh", "--batch_size", "10"]
    res = subprocess.run([sys.executable, str(ROOT / "rank_vs_width.py"), *common, "--n", "20", "--widths", "2,3"],
                         cwd=tmp_path, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert "exact:    6 of 6 ranks equal their prediction" in res.stdout  # 2 points × 3 matrices
    res = subprocess.run([sys.executable, str(ROOT / "plotting.py"), "--task", "width", "--loss", "cosh",
                          "--dataset", "gaussian", "--normalize", "0"], cwd=tmp_path, capture_output=True, text=True,
                         env=env)
    assert res.returncode == 0, res.stderr
    png = Path(tmp_path, res.stdout.split()[0])
    assert png.parent == Path(tmp_path, "results/store/width/cosh/gaussian") and png.name.endswith("_rank.png")
    bad = subprocess.run([sys.executable, str(ROOT / "rank_vs_depth.py"), "--depths", "x"], cwd=tmp_path,
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and bad.stderr.startswith("rank_vs_depth.py: error: --depths 'x'")
    assert bad.stderr.count("\n") == 1


def test_store_table_round_trip_and_stale_temporaries(tmp_path):
    table = ResultTable(tmp_path / "f", "stem", ("n", "value"))
    assert table.read_rows() == []
    with table.lock():
        table.write_rows([{"n": "1", "value": "0.1"}, {"n": "2", "value": repr(1 / 3)}])
    assert table.read_rows() == [{"n": "1", "value": "0.1"}, {"n": "2", "value": repr(1 / 3)}]
    assert float(table.read_rows()[1]["value"]) == 1 / 3  # exact round trip
    stale = tmp_path / "f" / ".stem.csv.abc123.tmp"
    stale.write_text("half a row")
    with table.lock():
        assert not stale.exists()
    umask = os.umask(0o022)
    os.umask(umask)
    assert table.csv_path.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would make it, not 0600
    other = ResultTable(tmp_path / "f", "stem", ("n", "other"))
    with pytest.raises(StoreError, match="has columns"):
        other.read_rows()


def test_row_values_are_the_run_values():
    from hessrank.store import result_row

    res = run(RunConfig(dataset="gaussian", n=20, dim=5, K=2, units=(3,), activation="tanh"))
    row = result_row(res)
    assert list(row) == list(RESULT_COLUMNS)
    assert int(row["rank_o"]) == res.ranks["H_o"].rank and int(row["pred_F"]) == res.prediction.H_F
    assert row["kind"] == "bound" and int(row["num_params"]) == res.p == 5 * 3 + 3 * 2
    assert float(row["tol_L"]) == res.ranks["H_L"].tol
    gap = res.ranks["H_F"].gap_decades
    assert row["gap_F"] == ("" if gap is None else "inf" if np.isinf(gap) else repr(gap))


def test_running_hessians_equal_the_matrices_of_the_first_m_samples():
    import jax
    import jax.numpy as jnp
    from reference import forward, loss_sum

    from hessrank import MLP, get_loss
    from hessrank.curvature import running_hessians
    from hessrank.data import encode_targets

    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((7, 4)), encode_targets(rng.integers(0, 3, 7), 3)
    model = MLP(widths=(4, 3, 3), activation="tanh", bias=True)
    theta = model.init(seed=2)
    seen = []
    for m, mats in running_hessians(model, get_loss("cosh"), theta, X, Y, batch_size=3):  # 3 + 3 + 1
        seen.append(m)
        f = lambda t: forward(t, X[:m], model.widths, "tanh", True)  # noqa: E731
        HL = np.asarray(jax.jit(jax.hessian(lambda t: loss_sum(f(t), Y[:m], "cosh")))(jnp.asarray(theta)))
        # H_o = Σ_{i≤m} J_iᵀ diag(sech²(f_i − y_i)) J_i, from the explicit Jacobian
        J = np.asarray(jax.jit(jax.jacobian(f))(jnp.asarray(theta)))           # (m, K, p)
        lam = 1.0 / np.cosh(np.asarray(f(jnp.asarray(theta))) - Y[:m]) ** 2    # (m, K)
        Ho = np.einsum("ikp,ik,ikq->pq", J, lam, J)
        scale = np.abs(HL).max()
        np.testing.assert_allclose(mats["H_L"], HL, atol=1e-11 * scale, rtol=0)
        np.testing.assert_allclose(mats["H_o"], Ho, atol=1e-11 * scale, rtol=0)
        np.testing.assert_allclose(mats["H_F"], HL - Ho, atol=1e-10 * scale, rtol=0)
    assert seen == [3, 6, 7]


def test_config_hash_is_stable_and_sees_every_setting():
    from hessrank.store import config_hash, config_identity

    base = RunConfig(dataset="gaussian", n=30, dim=6, K=3)
    ident = config_identity(base, task="width")
    assert config_hash(ident) == config_hash(dict(reversed(list(ident.items()))))  # key order is irrelevant
    for where in (dict(data_dir="/elsewhere"), dict(download=True)):  # where the files are, not what they hold
        assert config_hash(ident) == config_hash(config_identity(base.replace(**where), task="width"))
    changes = dict(dataset="digits", n=31, dim=7, K=4, units=(3,), activation="relu", bias=True, init="uniform",
                   loss="cosh", batch_size=5, seed=2, rtol=1e-9, atol=1e-12, resize="area", label_noise=0.1)
    hashes = {config_hash(config_identity(base.replace(**{k: v}), task="width")) for k, v in changes.items()}
    assert len(hashes) == len(changes) and config_hash(ident) not in hashes
    assert config_hash(config_identity(base, task="depth")) != config_hash(ident)
