"""Second hostile battery, the outside world: names and folders of the store, files that are
not what they seem, signals, locales, closed streams and the process's own memory limit."""

import io
import json
import os
import signal
import sys
import textwrap

import numpy as np
import pytest

from hessrank import hessian_ranks
from hessrank.cli import main
from hessrank.errors import ConfigError, StoreError
from hessrank.measure.blocks import resolve_blocks
from hessrank.models import function_model

TINY = ["--dataset", "gaussian", "--n", "6", "--dim", "3", "--K", "2", "--units", "2"]
SWEEP = ["sweep", "width", "--dataset", "gaussian", "--dim", "4", "--n", "10", "--K", "2", "--widths", "2,3",
         "--batch_size", "5"]


def _one_line(capsys, argv, *, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and needle in err, err
    return err


# --------------------------------------------------------------------------- names, blocks, arguments
def _two_layer(p, X):
    return np.tanh(X @ p["a/b"]) @ p["a"]["b"]


def test_two_leaves_of_one_name_are_refused_not_merged():
    params = {"a/b": np.ones((3, 2)), "a": {"b": np.ones((2, 2))}}
    with pytest.raises(ConfigError, match="two leaves have this name") as info:
        function_model(_two_layer, params)
    assert info.value.param == "params"


@pytest.mark.parametrize("blocks,needle", [
    ({"first": ["w", "w"]}, "listed twice"),
    ({"first": 3}, "give a list of leaf names"),
    ({"first": {"w": 1}}, "give a list of leaf names"),
    ({5: ["w"]}, "non-empty strings"),
    ({"first": [["w"]]}, "no such parameter array"),
    ({"empty": ["e"]}, "holds no parameters"),
])
def test_a_blocks_mapping_that_is_not_one_is_one_line(blocks, needle):
    model, _ = function_model(lambda p, X: X @ p["w"] + p["e"].sum(), {"w": np.ones((3, 2)), "e": np.ones((0,))})
    with pytest.raises(ConfigError, match=needle) as info:
        resolve_blocks(model, blocks)
    assert info.value.param == "blocks" and "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs,param", [
    ({"rtol": True}, "rtol"), ({"rtol": "1e-3"}, "rtol"), ({"atol": [1.0]}, "atol"),
    ({"batch_size": True}, "batch_size"), ({"batch_size": 2.0}, "batch_size"), ({"seed": True}, "seed"),
    ({"seed": -1}, "seed"), ({"loss": ["mse"]}, "loss"), ({"method": ["dense"]}, "method"),
])
def test_python_api_arguments_are_type_checked_like_the_flags(kwargs, param):
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    with pytest.raises(ConfigError) as info:
        hessian_ranks(lambda p, X: X @ p["w"], {"w": np.ones((3, 2))}, X, Y, **kwargs)
    assert info.value.param == param and "\n" not in str(info.value)


def test_complex_data_is_refused_not_cast():
    X = np.ones((5, 3)) * (1 + 1j)
    with pytest.raises(ConfigError, match="complex") as info:
        hessian_ranks(lambda p, X: X @ p["w"], {"w": np.ones((3, 2))}, X, np.ones((5, 2)))
    assert info.value.param == "X"


@pytest.mark.parametrize("content,needle", [
    (b"1" * 200_000 + b"\n", "cannot read as CSV"),
    (b"1,2,0\n3,\x004,1\n", "NUL bytes"),
    (b"1,2,0\n3,4,0\n", "no K fits"),                    # one class: K = 1 needs two, say so
], ids=["huge-field", "nul", "one-class"])
def test_hostile_csv_files_are_one_line(capsys, tmp_path, content, needle):
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    err = _one_line(capsys, ["run", "--dataset", str(path), "--K", "1", "--units", "2"], needle=needle)
    assert "--K <= 1" not in err


def test_a_multi_line_message_is_one_line():
    err = ConfigError.invalid("x", np.eye(3), "first\nsecond", quoted=False)
    assert "\n" not in str(err) and "second" in str(err)


# --------------------------------------------------------------------------- paths
@pytest.mark.parametrize("function", ["..", "x/../../../escape", "x y", "../../escape"])
def test_the_function_part_of_model_never_becomes_a_path(capsys, tmp_path, function):
    file = tmp_path / "net.py"   # a module can hold a function under any name: globals()[name] = build
    file.write_text(textwrap.dedent(f'''
        import numpy as np
        def build(d, K, seed):
            return (lambda p, X: X @ p["w"]), {{"w": np.ones((d, K))}}
        globals()[{function!r}] = build
    '''))
    out = tmp_path / "deep" / "out"
    _one_line(capsys, ["train", *TINY[:-2], "--steps", "1", "--checkpoints", "0,1", "--model", f"{file}:{function}",
                       "--out", str(out)], needle="--model")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.py"]


def test_a_params_folder_replaced_by_a_link_is_not_written_through(tmp_path, capsys):
    def train(steps, checkpoints):
        return main(["train", *TINY, "--steps", steps, "--checkpoints", checkpoints, "--out", str(tmp_path / "out")])

    assert train("2", "0,2") == 0
    folder = next((tmp_path / "out").rglob("*_params"))
    for item in folder.iterdir():
        item.unlink()
    folder.rmdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    folder.symlink_to(elsewhere)
    capsys.readouterr()
    assert train("4", "0,2,4") == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.splitlines()[-1].endswith("remove the link") and "is a link" in err
    assert list(elsewhere.iterdir()) == []
    assert not list(folder.parent.glob("*.lock"))


# --------------------------------------------------------------------------- files that are not files
@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    out = tmp_path_factory.mktemp("store")
    assert main([*SWEEP, "--out", str(out)]) == 0
    return out, next(out.rglob("*.csv"))


def _copy(stored, tmp_path):
    out, csv = stored
    mine = tmp_path / csv.relative_to(out)
    mine.parent.mkdir(parents=True)
    mine.write_bytes(csv.read_bytes())
    mine.with_suffix(".json").write_bytes(csv.with_suffix(".json").read_bytes())
    return mine


@pytest.mark.parametrize("what", ["json", "lock", "csv"])
def test_a_fifo_where_a_file_belongs_is_one_line_not_a_hang(stored, tmp_path, capsys, what):
    mine = _copy(stored, tmp_path)
    target = mine.with_suffix(f".{what}")
    target.unlink(missing_ok=True)
    os.mkfifo(target)
    err = _one_line(capsys, [*SWEEP, "--out", str(tmp_path)], needle=str(target))
    assert "regular file" in err


@pytest.mark.parametrize("stray", [b"\xff\xfe{", b"[" * 100_000 + b"]" * 100_000, b"[1, 2]", b"\"text\"", None],
                         ids=["not-utf8", "deep", "list", "string", "fifo"])
def test_plot_takes_any_stray_json_in_the_store(stored, tmp_path, capsys, stray):
    mine = _copy(stored, tmp_path)
    path = mine.with_name("stray.json")
    if stray is None:
        os.mkfifo(path)
    else:
        path.write_bytes(stray)
    assert main(["plot", "--task", "width", "--dataset", "gaussian", "--out", str(tmp_path)]) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_plotting_a_damaged_result_json_is_one_line(tmp_path):
    from hessrank.plotting import plot_density

    for content in (b"\xff", b"[1]", b"[" * 100_000):
        path = tmp_path / "r.json"
        path.write_bytes(content)
        with pytest.raises(StoreError) as info:
            plot_density(path)
        assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- signals, streams, locale, memory
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_end_like_ctrl_c(tmp_path, capsys, monkeypatch, sig):
    from hessrank.store import session

    real = session.Session.store

    def store_then_signal(self, *args, **kwargs):
        real(self, *args, **kwargs)
        # without a handler the signal would end this test process: check first, then send it
        assert signal.getsignal(sig) not in (signal.SIG_DFL, None), "no handler while the lock is held"
        os.kill(os.getpid(), sig)

    monkeypatch.setattr(session.Session, "store", store_then_signal)
    assert main([*SWEEP, "--widths", "2,3,4", "--out", str(tmp_path)]) == 130
    assert "interrupted" in capsys.readouterr().err
    csv = next(tmp_path.rglob("*.csv"))
    assert len(csv.read_text().splitlines()) == 2                 # the row stored before the signal is kept
    assert not list(csv.parent.glob("*.lock"))
    assert json.loads(csv.with_suffix(".json").read_text())["sessions"][-1]["finished"] is not None
    assert signal.getsignal(sig) is signal.SIG_DFL                 # the program's own handlers are restored


def _streams(monkeypatch, encoding="utf-8"):
    out, err = io.BytesIO(), io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(out, encoding=encoding, write_through=True))
    monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(err, encoding=encoding, write_through=True))
    return out, err


def test_output_survives_an_ascii_locale(monkeypatch):
    out, err = _streams(monkeypatch, encoding="ascii")
    assert main(["run", *TINY]) == 0
    assert b"Sigma" in out.getvalue() and b"H_o" in out.getvalue() and b"Traceback" not in err.getvalue()
    assert main(["run", *TINY, "--n", "0"]) == 2
    assert err.getvalue().count(b"\n") == 1


def test_a_closed_stdout_or_stderr_is_handled(monkeypatch):
    out, err = _streams(monkeypatch)
    monkeypatch.setattr(sys, "stdout", None)                     # started with `>&-`
    assert main(["run", *TINY]) == 2
    assert err.getvalue().count(b"\n") == 1 and b"stdout is closed" in err.getvalue()
    out, err = _streams(monkeypatch)
    monkeypatch.setattr(sys, "stderr", None)                     # started with `2>&-`
    assert main(["run", *TINY, "--n", "0"]) == 2
    assert out.getvalue() == b""                                  # the message never lands on stdout


def test_the_memory_plan_honours_the_process_limit(monkeypatch):
    import resource

    from hessrank.measure import plan

    used = plan._status_kib("VmSize") * 1024
    monkeypatch.setattr(resource, "getrlimit", lambda which: (used + 2**30, resource.RLIM_INFINITY)
                        if which == resource.RLIMIT_AS else (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    assert plan.available_memory_bytes() <= 2**30 + 2**26     # ulimit -v: what is left of the address space
    with pytest.raises(ConfigError) as info:                  # a dense p×p plan that fits the machine, not the limit
        plan.plan_method("dense", 20_000, 10, 2)
    assert info.value.param == "method"


def test_messages_name_a_deleted_working_directory(tmp_path, capsys, monkeypatch):
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    monkeypatch.setenv("PWD", str(gone))
    gone.rmdir()
    _one_line(capsys, ["run", *TINY, "--spectrum", "s.csv"], needle=f"{str(gone)!r} no longer exists")


def test_eigenvectors_at_the_store_root_are_refused_before_the_work(tmp_path, capsys):
    path = tmp_path / "e.npz"
    _one_line(capsys, ["spectrum", *TINY, "--out", str(path), "--eigenvectors", str(path)], needle="--eigenvectors")
    assert not path.exists()


def test_a_grid_point_that_kills_its_worker_fails_once(tmp_path, capsys):
    grid = tmp_path / "g.toml"
    grid.write_text('[grid]\ndataset = "gaussian"\nn = 4\ndim = 3\nK = 2\nunits = ["2"]\n')
    # a worker limit below what importing the engine takes: the nanny kills the worker on the point
    assert main(["grid", str(grid), "--workers", "1", "--memory-limit", "200MB", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "1 failed" in out and "its worker died while running it" in out, out
    folder = tmp_path / "out" / "store" / "grid" / "g"
    assert not list(folder.glob("*.lock")) and "failed" in next(folder.glob("*.csv")).read_text()


def test_a_fifo_grid_file_is_one_line_not_a_hang(tmp_path, capsys):
    fifo = tmp_path / "g.toml"
    os.mkfifo(fifo)
    _one_line(capsys, ["grid", str(fifo), "--out", str(tmp_path / "out")], needle="regular file")


@pytest.mark.parametrize("stem", ["my grid", "grid$1", "ä", "...", "a;b"])
def test_a_grid_file_name_that_cannot_be_a_store_folder_is_refused(tmp_path, stem):
    from hessrank.errors import ConfigError
    from hessrank.grid import load_grid

    path = tmp_path / f"{stem}.toml"
    path.write_text('[run]\ndataset = "gaussian"\n')
    with pytest.raises(ConfigError, match="only letters, digits"):
        load_grid(path)
