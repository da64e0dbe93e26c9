"""Hypothesis over the flags of ``hessian-rank run``: exit 0 or 2, never a traceback, one line on 2."""

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from hessrank.cli import main  # noqa: E402

_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=12)
_INT = st.one_of(st.integers(-5, 12).map(str), st.sampled_from(["0", "-1", "1e3", "99999999999999999999", "nan",
                                                                 "2147483648", "", "x"]), _TEXT)
_FLOAT = st.one_of(st.sampled_from(["nan", "inf", "-1", "1e-12", "1e400", "0", "0.5", "", "x"]), _TEXT)
_FLAGS = {
    "--n": _INT, "--dim": _INT, "--K": _INT, "--seed": _INT, "--batch_size": _INT,
    "--units": st.one_of(st.sampled_from(["3", "2,2", "0", "-1", "3,", ",", "1e9", "2147483648,2", ""]), _TEXT),
    "--rtol": _FLOAT, "--atol": _FLOAT, "--label-noise": _FLOAT,
    "--activation": st.one_of(st.sampled_from(["linear", "tanh", "relu"]), _TEXT),
    "--loss": st.one_of(st.sampled_from(["mse", "cross", "cosh"]), _TEXT),
    "--init": st.one_of(st.sampled_from(["glorot", "orthogonal"]), _TEXT),
    "--method": st.sampled_from(["auto", "dense", "matrix-free", "sparse"]),
    "--dataset": st.sampled_from(["gaussian", "gaussian", "nope", "x.npz", "x.csv", ""]),
}
# a tiny problem: every case either stops at a check or runs in well under a second
_BASE = {"--dataset": "gaussian", "--n": "4", "--dim": "3", "--K": "2", "--units": "2"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.fixed_dictionaries({}, optional=_FLAGS))
def test_run_flags_end_in_exit_0_or_one_line(capsys, flags):
    argv = ["run"]
    for flag, value in {**_BASE, **flags}.items():
        argv += [f"{flag}={value}"]
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's --help and friends
        code = exit_.code
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert code in (0, 2), (argv, code, captured.err)
    if code == 2:
        assert captured.err.count("\n") == 1, (argv, captured.err)
