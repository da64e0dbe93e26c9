"""Hypothesis over ``sweep``, ``train``, ``spectrum`` and the Python API's arguments: a result,
or one line naming what is wrong — never a traceback. Few examples each (the suite's time)."""

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from hessrank import hessian_ranks, hessian_spectrum  # noqa: E402
from hessrank.cli import main  # noqa: E402
from hessrank.errors import HessrankError  # noqa: E402

_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=8)
_INT = st.one_of(st.integers(-3, 6).map(str), st.sampled_from(["0", "1e3", "99999999999999999999", "nan", ""]), _TEXT)
_FLOAT = st.one_of(st.sampled_from(["nan", "inf", "-1", "0", "0.5", "1e400", ""]), _TEXT)
_TINY = {"--dataset": "gaussian", "--n": "4", "--dim": "3", "--K": "2"}
_SETTINGS = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _exit_0_or_one_line(capsys, argv):
    try:
        code = main(argv)
    except SystemExit as exit_:  # --help
        code = exit_.code
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert code in (0, 2), (argv, code, captured.err)
    if code == 2:  # progress lines may come first; the error is one line, the last
        lines = captured.err.splitlines()
        assert lines and lines[-1].startswith("hessian-rank") and captured.err.count("error:") == 1, \
            (argv, captured.err)


def _argv(command, base, flags):
    argv = list(command)
    for flag, value in {**base, **flags}.items():
        argv.append(f"{flag}={value}")
    return argv


@_SETTINGS
@given(task=st.sampled_from(["width", "depth", "samplesize"]), flags=st.fixed_dictionaries({}, optional={
    "--widths": st.one_of(st.sampled_from(["2", "2,3", "0", "1:3", "3:1", "", ","]), _TEXT),
    "--depths": st.one_of(st.sampled_from(["1", "1:2", "0", "-1", ""]), _TEXT),
    "--width": _INT, "--n-max": _INT, "--batch_size": _INT, "--rtol": _FLOAT, "--seed": _INT,
    "--loss": st.one_of(st.sampled_from(["mse", "cross", "cosh"]), _TEXT)}))
def test_sweep_flags_end_in_exit_0_or_one_line(capsys, tmp_path_factory, task, flags):
    base = {**_TINY, "--out": str(tmp_path_factory.mktemp("sweep")), "--batch_size": "2", "--n-max": "4"}
    if task == "width":
        base["--widths"] = "2"
    elif task == "depth":
        base.update({"--depths": "1", "--width": "2"})
    _exit_0_or_one_line(capsys, _argv(["sweep", task], base, flags))


@_SETTINGS
@given(flags=st.fixed_dictionaries({}, optional={
    "--optimizer": st.one_of(st.sampled_from(["sgd", "momentum", "adam"]), _TEXT), "--lr": _FLOAT,
    "--steps": _INT, "--train-batch": _INT, "--checkpoints": st.one_of(st.sampled_from(["0", "0,1", "5", "-1",
                                                                                         "1,0", ""]), _TEXT),
    "--units": st.one_of(st.sampled_from(["2", "0", ""]), _TEXT)}))
def test_train_flags_end_in_exit_0_or_one_line(capsys, tmp_path_factory, flags):
    base = {**_TINY, "--units": "2", "--steps": "2", "--checkpoints": "0,2",
            "--out": str(tmp_path_factory.mktemp("train"))}
    _exit_0_or_one_line(capsys, _argv(["train"], base, flags))


@_SETTINGS
@given(flags=st.fixed_dictionaries({}, optional={
    "--top": _INT, "--trace-samples": _INT, "--probes": _INT, "--lanczos-steps": _INT,
    "--eigenvectors": st.one_of(st.sampled_from(["e.npz", "e.txt", "", "."]), _TEXT),
    "--method": st.sampled_from(["auto", "dense", "matrix-free", "x"])}))
def test_spectrum_flags_end_in_exit_0_or_one_line(capsys, tmp_path_factory, flags):
    folder = tmp_path_factory.mktemp("spectrum")
    if "--eigenvectors" in flags:
        flags = {**flags, "--eigenvectors": str(folder / flags["--eigenvectors"])}
    base = {**_TINY, "--units": "2", "--no-density": None, "--out": str(folder)}
    argv = [a.removesuffix("=None") for a in _argv(["spectrum"], base, flags)]
    _exit_0_or_one_line(capsys, argv)


_ANY = st.one_of(st.none(), st.booleans(), st.integers(-3, 5), st.floats(allow_nan=True, allow_infinity=True),
                 st.text(max_size=4), st.lists(st.integers(0, 2), max_size=2), st.just(np.float32(1e-3)),
                 st.just(1 + 1j))


def _f(p, X):
    return X @ p["w"]


@settings(max_examples=15, deadline=None)
@given(kwargs=st.fixed_dictionaries({}, optional={
    "loss": _ANY, "method": _ANY, "rtol": _ANY, "atol": _ANY, "batch_size": _ANY, "seed": _ANY, "blocks": _ANY}),
    spectral=st.fixed_dictionaries({}, optional={"top": _ANY, "trace": _ANY, "eigenvectors": _ANY}))
def test_python_api_arguments_give_a_result_or_one_named_error(kwargs, spectral):
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    params = {"w": rng.standard_normal((3, 2))}
    for call, extra in ((hessian_ranks, {}), (hessian_spectrum, {"density": False, **spectral})):
        try:
            call(_f, params, X, Y, **kwargs, **extra)
        except HessrankError as err:
            assert "\n" not in str(err) and err.param is not None, (kwargs, extra, str(err))


@pytest.mark.parametrize("brk", ["\x0b", "\x0c", "\x1c", "\x85", "\u2028"])
def test_a_line_break_of_any_kind_in_a_value_stays_inside_the_one_line(capsys, brk):
    """str.splitlines ends a line at these too; an error quoting the value is still one line."""
    for argv in (["run", f"--units=5{brk}5"], ["sweep", "width", "--dataset=gaussian", f"--depths={brk}"]):
        _exit_0_or_one_line(capsys, argv)
