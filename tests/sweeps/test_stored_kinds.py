"""Stored rows with a kind per matrix: the `kind` cell, old tables, sweep and grid
summaries, and the figures (exact predictions as dots, bounds as dashed lines).

Measured ranks are compared with the stored predictions: bounds must never be exceeded.
"""

import json

import numpy as np
import pandas as pd
import pytest

from hessrank import RunConfig, StoreError
from hessrank.grid import GridOutcome, format_grid_summary, load_grid, run_point, summarize
from hessrank.grid.spec import text_value
from hessrank.plotting import grid_figure, sweep_figure
from hessrank.plotting.figures import PREDICTION_STYLE
from hessrank.store import count_comparisons, encode_kinds, row_comparisons, row_kinds, row_mark
from hessrank.sweeps import format_summary, make_sweep, run_sweep
from hessrank.theory import predict_ranks

MATRICES = ("H_L", "H_o", "H_F")
SUFFIX = {"H_L": "L", "H_o": "o", "H_F": "F"}


def test_kind_cell_round_trip_and_the_old_single_word():
    mixed = {"H_L": "estimate", "H_o": "exact", "H_F": "bound"}
    assert encode_kinds(mixed) == "H_L:estimate;H_o:exact;H_F:bound"
    assert row_kinds({"kind": encode_kinds(mixed)}) == mixed
    assert encode_kinds(dict.fromkeys(MATRICES, "bound")) == "bound"
    for word in ("exact", "estimate", "bound"):  # what tables written before per-matrix kinds hold
        assert row_kinds({"kind": word}) == dict.fromkeys(MATRICES, word)
    assert row_kinds({"kind": "-"}) == dict.fromkeys(MATRICES, None)
    for bad in ("", "exactly", "H_L:exact;H_o:exact", "H_L:exact;H_o:guess;H_F:exact", "H_x:exact;H_o:exact;H_F:exact"):
        with pytest.raises(StoreError, match="stored kind"):
            row_kinds({"kind": bad})


def test_comparisons_by_kind():
    row = {"kind": "H_L:bound;H_o:bound;H_F:exact", "rank_L": "9", "pred_L": "8", "rank_o": "5", "pred_o": "7",
           "rank_F": "3", "pred_F": "3"}
    assert row_comparisons(row) == {"H_L": ("bound", "violated"), "H_o": ("bound", "below"), "H_F": ("exact", "equal")}
    assert row_mark(row) == "> bound!"
    counts = count_comparisons([row, dict(row, rank_L="8", rank_F="4")])
    assert counts["bound_ranks"] == 4 and counts["bound_violated"] == 1 and counts["bound_equal"] == 1
    assert counts["bound_below"] == 2 and counts["exact_ranks"] == 2 and counts["exact_equal"] == 1
    assert row_mark(dict(row, rank_L="8", rank_F="4")) == "≠"


@pytest.fixture(scope="module")
def relu_width(tmp_path_factory):
    out = tmp_path_factory.mktemp("store")
    base = RunConfig(dataset="gaussian", n=30, dim=6, K=3, batch_size=10, activation="relu")
    return out, base, run_sweep(make_sweep("width", base, widths="2,4"), out=out)


def test_relu_width_sweep_stores_bounds_that_hold(relu_width):
    _, _, outcome = relu_width
    for row in outcome.rows:
        assert row["kind"] == "bound"
        for name, s in SUFFIX.items():
            assert int(row[f"rank_{s}"]) <= int(row[f"pred_{s}"]), (row["width"], name)
    text = format_summary(outcome)
    assert "bound:    0 of 6 ranks above their bound" in text and "exact:" not in text
    assert "> bound!" not in text and " / ≤" in text
    from hessrank.sweeps import _point_message  # the progress line of one point

    assert _point_message(outcome.rows[0]).startswith(f"H_L {outcome.rows[0]['rank_L']}/≤{outcome.rows[0]['pred_L']}")


def test_an_old_table_stays_readable_and_is_summarised_by_kind(relu_width, tmp_path):
    """A row as stored before kinds were per matrix (the linear formula, kind `estimate`)
    is read back, kept, and counted as an estimate beside the new rows' bounds."""
    out, base, outcome = relu_width
    table = outcome.table
    rows = table.read_rows()
    old = dict(rows[0])
    pred = predict_ranks(r=int(old["r"]), K=3, units=(2, 2), activation="relu")  # the old call: no n, d
    assert pred.kind == "estimate"
    old.update(kind="estimate", **{f"pred_{s}": str(getattr(pred, m)) for m, s in SUFFIX.items()})
    with table.lock():
        table.write_rows([old, *rows[1:]])
    again = run_sweep(make_sweep("width", base, widths="2,4,6"), out=out)
    assert again.computed == [6] and again.stored_before == 2
    assert [row["kind"] for row in again.rows] == ["estimate", "bound", "bound"]
    c = count_comparisons(again.rows)
    assert c["estimate_ranks"] == 3 and c["bound_ranks"] == 6 and c["bound_violated"] == 0
    text = format_summary(again)
    assert "estimate: " in text and "bound:    0 of 6 ranks above their bound" in text


def _dashed(fig):
    (ax,) = fig.axes
    return [ln for ln in ax.get_lines() if ln.get_linestyle() == "--" and not ln.get_label().startswith("_")]


@pytest.mark.parametrize("task", ["width", "depth"])
def test_relu_sweep_figure_draws_measured_against_the_bound(task, tmp_path):
    base = RunConfig(dataset="gaussian", n=30, dim=6, K=3, batch_size=10, activation="relu")
    sweep = make_sweep(task, base, widths="2,4") if task == "width" else make_sweep(task, base, depths="1,2", width=3)
    outcome = run_sweep(sweep, out=tmp_path)
    rows = pd.read_csv(outcome.table.csv_path, keep_default_na=False, dtype={"kind": str})
    meta = json.loads(outcome.table.json_path.read_text())
    fig = sweep_figure(rows, meta, normalize=False)
    (ax,) = fig.axes
    labelled = [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]
    assert not [ln for ln in labelled if ln.get_linestyle() == "None"]  # no exact dots for ReLU
    dashed = _dashed(fig)
    assert len(dashed) == 3 and all("bound" in ln.get_label() for ln in dashed)
    for ln in dashed:
        name = next(m for m in MATRICES if m in ln.get_label())
        measured = next(m for m in labelled if m.get_linestyle() == "-" and m.get_color() == ln.get_color())
        np.testing.assert_array_equal(ln.get_ydata(), rows[f"pred_{SUFFIX[name]}"].to_numpy(float))
        assert np.all(measured.get_ydata() <= ln.get_ydata())


def test_linear_sweep_figure_keeps_exact_dots(tmp_path):
    base = RunConfig(dataset="gaussian", n=30, dim=6, K=3, batch_size=10)
    outcome = run_sweep(make_sweep("width", base, widths="2"), out=tmp_path)
    rows = pd.read_csv(outcome.table.csv_path, keep_default_na=False, dtype={"kind": str})
    fig = sweep_figure(rows, json.loads(outcome.table.json_path.read_text()), normalize=False)
    (ax,) = fig.axes
    dots = [ln for ln in ax.get_lines() if ln.get_linestyle() == "None"]
    assert len(dots) == 3 and not _dashed(fig)
    for ln in dots:
        assert ln.get_marker() == PREDICTION_STYLE["exact"]["marker"]


def test_grid_summary_and_figure_by_kind(tmp_path):
    path = tmp_path / "kinds.toml"
    path.write_text('[grid]\ndataset = "gaussian"\nn = 20\ndim = 5\nK = 3\nunits = "3"\n'
                    'activation = ["linear", "relu"]\nloss = ["mse", "cross"]\n')
    grid = load_grid(path)
    rows = [{"point": p.id, **{k: text_value(v) for k, v in p.values.items()}, **run_point(p.config)}
            for p in grid.points]
    outcome = GridOutcome(grid=grid, table=grid.table(tmp_path), rows=rows, computed=[p.id for p in grid.points])
    c = summarize(outcome)
    assert c["done"] == 4 and c["exact_ranks"] == 6 and c["exact_equal"] == 6  # linear: 2 points × 3 matrices
    assert c["bound_ranks"] == 6 and c["bound_violated"] == 0
    text = format_grid_summary(outcome)
    assert "exact:    6 of 6 ranks equal their prediction" in text
    assert "bound:    0 of 6 ranks above their bound" in text
    fig = grid_figure(pd.DataFrame(rows), grid, facet="activation")
    for ax in fig.axes:
        lines = {ln.get_label(): ln for ln in ax.get_lines()}
        exact, bound = lines["exact prediction"], lines["bound (measured ≤ bound)"]
        assert len(exact.get_xdata()) + len(bound.get_xdata()) == 2
        np.testing.assert_array_equal(exact.get_xdata(), exact.get_ydata())
        assert np.all(bound.get_ydata() <= bound.get_xdata())
        assert (len(bound.get_xdata()) == 2) == ("relu" in ax.get_title())
