"""`hessian-rank run`: output, JSON, spectrum file and one-line errors with exit 2."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hessrank.cli import main

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--dataset", "gaussian", "--n", "12", "--dim", "6", "--units", "3,4", "--K", "3"]


def test_json_is_one_object_with_the_documented_keys(capsys):
    assert main(["run", *SMALL, "--json"]) == 0
    out = capsys.readouterr().out
    obj = json.loads(out)
    assert out.strip().count("\n") == 0
    for key in ("p", "n", "r", "config", "ranks", "predictions", "tolerance", "gap_decades", "seconds"):
        assert key in obj
    assert obj["p"] == 6 * 3 + 3 * 4 + 4 * 3 and obj["n"] == 12 and obj["r"] == 6
    assert obj["predictions"]["kind"] == "exact"
    assert obj["ranks"] == {k: obj["predictions"][k] for k in ("H_L", "H_o", "H_F")}
    assert set(obj["tolerance"]) == set(obj["gap_decades"]) == {"H_L", "H_o", "H_F"}


def test_table_and_spectrum_csv(tmp_path, capsys):
    path = tmp_path / "sub" / "spec.csv"
    assert main(["run", *SMALL, "--activation", "tanh", "--bias", "--spectrum", str(path)]) == 0
    out = capsys.readouterr().out
    assert "H_L" in out and "bound" in out and "p = " in out  # tanh: only the bounds ≤ p − data span
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 6 * 3 + 3 + 3 * 4 + 4 + 4 * 3 + 3
    assert list(rows[0]) == ["index", "H_L", "H_o", "H_F"]
    assert not list(path.parent.glob(".*tmp"))


@pytest.mark.parametrize("args,needle", [
    (["--loss", "hinge"], "--loss 'hinge': not one of mse, cross, cosh"),
    (["--activation", "swish"], "--activation 'swish'"),
    (["--init", "he"], "--init 'he'"),
    (["--dataset", "imagenet"], "--dataset 'imagenet'"),
    (["--units", "5,0"], "--units '5,0'"),
    (["--units", "5,x"], "--units '5,x'"),
    (["--units", ""], "--units"),
    (["--K", "0"], "--K 0"),
    (["--n", "0"], "--n 0"),
    (["--batch_size", "0"], "--batch_size 0"),
    (["--batch_size", "500"], "--batch_size 500"),
    (["--n", "abc"], "--n"),
    (["--loss", "cross", "--K", "1"], "--K 1: with loss 'cross'"),
    (["--rtol", "-1"], "--rtol"),
    (["--dataset", "gaussian", "--dim", "9000", "--units", "3000"], "GiB"),
])
def test_bad_input_is_one_line_and_exit_2(args, needle, capsys):
    assert main(["run", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err, err
    assert err.count("\n") == 0 and "Traceback" not in err


def test_bad_spectrum_path_fails_before_work(tmp_path, capsys):
    assert main(["run", *SMALL, "--spectrum", str(tmp_path)]) == 2
    assert "--spectrum" in capsys.readouterr().err


def test_console_script_and_root_script_run():
    out = subprocess.run([sys.executable, "-m", "hessrank.cli", "run", "--n", "30", "--dim", "16", "--units", "4,4",
                          "--json"], capture_output=True, text=True, check=True).stdout
    obj = json.loads(out)
    assert obj["config"]["dataset"] == "digits" and obj["d"] == 16
    assert obj["ranks"] == {k: obj["predictions"][k] for k in ("H_L", "H_o", "H_F")}
    bad = subprocess.run([sys.executable, "-m", "hessrank.cli", "run", "--loss", "nope"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    res = subprocess.run([sys.executable, str(ROOT / "hessian_rank.py")], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert "H_F" in res.stdout and "exact" in res.stdout


def test_rank_vs_rtol_table_and_json(capsys):
    assert main(["run", *SMALL, "--activation", "tanh", "--rank-vs-rtol"]) == 0
    out = capsys.readouterr().out
    assert "rank against the relative tolerance" in out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith(("1e-", "1e+"))]
    assert [r[0] for r in rows] == [f"{10.0 ** -e:.0e}" for e in range(16, 1, -1)]
    assert main(["run", *SMALL, "--activation", "tanh", "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    scan = obj["rank_vs_rtol"]
    # the same numbers in both outputs, and the run's own cut (p·eps = 9.3e-15) between two rows
    assert [[int(c) for c in r[1:]] for r in rows] == [list(t) for t in zip(scan["H_L"], scan["H_o"], scan["H_F"])]
    for name in ("H_L", "H_o", "H_F"):
        assert scan[name][scan["rtol"].index(1e-14)] <= obj["ranks"][name] <= scan[name][scan["rtol"].index(1e-15)]


def test_library_errors_name_parameters_and_the_cli_names_flags(capsys):
    assert main(["run", "--activation", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "hessian-rank run: error: --activation 'x': not one of linear, relu, leaky_relu, tanh, elu, sigmoid"
    assert main(["sweep", "width", "--widths", "9:4:1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hessian-rank sweep: error: --widths '9:4:1': stop 4 is below start 9") and "\n" not in err


def test_compile_cache_is_kept_between_processes_and_can_be_turned_off(tmp_path):
    args = [sys.executable, "-m", "hessrank.cli", "run", "--dataset", "gaussian", "--n", "8", "--dim", "3",
            "--units", "2", "--K", "2", "--json"]
    on, off = tmp_path / "on", tmp_path / "off"
    first = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "HESSRANK_COMPILE_CACHE": str(on)})
    assert first.returncode == 0, first.stderr
    assert any(on.iterdir()), "compiled programs are stored"
    again = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "HESSRANK_COMPILE_CACHE": str(on)})
    assert json.loads(again.stdout)["ranks"] == json.loads(first.stdout)["ranks"]
    no = subprocess.run([*args, "--no-compile-cache"], capture_output=True, text=True,
                        env={**os.environ, "HESSRANK_COMPILE_CACHE": str(off)})
    assert no.returncode == 0 and not off.exists()
    # on by default, in the user's cache folder, size-capped (which makes JAX lock the folder);
    # HESSRANK_COMPILE_CACHE=off turns it off unless --compile-cache asks for it
    home = {k: v for k, v in os.environ.items() if k != "HESSRANK_COMPILE_CACHE"}
    home["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    assert subprocess.run(args, capture_output=True, text=True, env=home).returncode == 0
    assert any((tmp_path / "xdg" / "hessrank" / "jax").glob("*-cache"))
    assert (tmp_path / "xdg" / "hessrank" / "jax" / ".lockfile").exists()
    home["XDG_CACHE_HOME"] = str(tmp_path / "xdg2")
    home["HESSRANK_COMPILE_CACHE"] = "off"
    assert subprocess.run(args, capture_output=True, text=True, env=home).returncode == 0
    assert not (tmp_path / "xdg2" / "hessrank" / "jax").exists()
    assert subprocess.run([*args, "--compile-cache"], capture_output=True, text=True, env=home).returncode == 0
    assert any((tmp_path / "xdg2" / "hessrank" / "jax").iterdir())


def test_an_uncertified_rank_is_reported_with_the_sketch_s_own_reason():
    from types import SimpleNamespace

    from hessrank.measure.report import _uncertified_warning

    cap = SimpleNamespace(uncertified=("H_L",), method_details={
        "H_L": {"status": "not certified: memory cap of 300 basis vectors reached", "certified": False}})
    floor = SimpleNamespace(uncertified=("H_F",), method_details={
        "H_F": {"status": "not certified: the residual is at the noise floor but 2δ = 1e-9", "certified": False}})
    assert _uncertified_warning(cap) == [
        "warning: H_L not certified: memory cap of 300 basis vectors reached: the rank shown is a lower bound; "
        "free memory, or use the dense method where it fits"]
    (line,) = _uncertified_warning(floor)
    assert "noise floor" in line and "memory cap" not in line
    assert _uncertified_warning(SimpleNamespace(uncertified=(), method_details={})) == []


def test_a_cache_folder_that_cannot_be_made_never_fails_a_run(tmp_path):
    # the cache is a speed-up: a folder that cannot be created (here, below a regular file)
    # leaves the run uncached, with its normal output and exit status
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    args = [sys.executable, "-m", "hessrank.cli", "run", "--dataset", "gaussian", "--n", "8", "--dim", "3",
            "--units", "2", "--K", "2", "--json"]
    env = {**os.environ, "HESSRANK_COMPILE_CACHE": str(blocker / "cache")}
    done = subprocess.run(args, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ranks"]["H_L"] >= 0
    assert done.stderr == ""
