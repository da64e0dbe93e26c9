"""Readable figures, checked on the drawn artists: matrices in the order H_L, H_o, H_F,
legends off the data, titles inside the figure, tick labels that do not overprint, and a
matrix or block of rank 0 drawn as a spike at 0."""

import json

import numpy as np
import pandas as pd
import pytest

from hessrank import RunConfig
from hessrank.cli import main
from hessrank.matrices import MATRICES
from hessrank.plotting.figures import block_density_figure, density_figure, spectrum_figure, sweep_figure
from hessrank.plotting.style import TEX
from hessrank.plotting.training import training_figure
from hessrank.sweeps import make_sweep, run_sweep

ORDER = [TEX[m] for m in MATRICES]   # H_L, H_o, H_F


@pytest.fixture(scope="module")
def spectra(tmp_path_factory):
    """A stored ``hessian-rank spectrum --blocks layers`` of a linear MLP: every diagonal block
    of H_F is exactly zero (f is linear in each weight matrix alone), so of rank 0."""
    out = tmp_path_factory.mktemp("spectra")
    args = ["spectrum", "--dataset", "gaussian", "--n", "12", "--dim", "4", "--units", "3,3", "--K", "2",
            "--blocks", "layers", "--no-compile-cache", "--out", str(out)]
    assert main([*args, "--json"]) == 0
    (path,) = [p for p in out.rglob("*.json") if "spectra" in p.parts]
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    outcome = run_sweep(make_sweep("width", RunConfig(dataset="gaussian", n=12, dim=4, K=2, batch_size=6),
                                   widths="2:4:2"), out=out)
    rows = pd.read_csv(outcome.table.csv_path, keep_default_na=False, dtype={"kind": str})
    return rows, json.loads(outcome.table.json_path.read_text())


def _renderer(fig):
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _legend(fig):
    (legend,) = fig.legends or [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    return legend


def _matrix_order(labels):
    """The matrices in the order their first legend entries name them."""
    seen = []
    for label in labels:
        name = next((tex for tex in ORDER if tex in label), None)
        if name and name not in seen:
            seen.append(name)
    return seen


def _legend_rows(legend):
    """The legend's texts as they are laid out: ``(box, text)`` read row by row, top to bottom
    (a row: texts whose centres lie within a few pixels of each other)."""
    renderer = legend.figure.canvas.get_renderer()
    placed = [(t.get_window_extent(renderer), t.get_text()) for t in legend.get_texts() if t.get_text()]
    placed.sort(key=lambda p: -(p[0].y0 + p[0].y1) / 2)
    rows = []
    for box, text in placed:
        centre = (box.y0 + box.y1) / 2
        if rows and abs(rows[-1][0] - centre) < 4:
            rows[-1][1].append((box, text))
        else:
            rows.append((centre, [(box, text)]))
    return [entry for _, row in rows for entry in sorted(row, key=lambda e: e[0].x0)]


def _inside_figure(fig, artist, renderer):
    box, page = artist.get_window_extent(renderer), fig.bbox
    return box.x0 >= page.x0 - 0.5 and box.x1 <= page.x1 + 0.5 and box.y0 >= page.y0 - 0.5 and \
        box.y1 <= page.y1 + 0.5


def _check_readable(fig):
    """Title inside the figure, legend off every axes, no two x tick labels overprinting."""
    renderer = _renderer(fig)
    titles = [ax.title for ax in fig.axes if ax.get_title()] + ([fig._suptitle] if fig._suptitle else [])
    assert titles
    for title in titles:
        assert _inside_figure(fig, title, renderer), title.get_text()
    legends = fig.legends or [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    for legend in legends:
        assert _inside_figure(fig, legend, renderer)
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            assert not box.overlaps(ax.get_window_extent(renderer)), "legend over the data"
    for ax in fig.axes:
        shown = [t for t in ax.get_xticklabels() if t.get_text() and t.get_visible()]
        boxes = sorted((t.get_window_extent(renderer) for t in shown), key=lambda b: b.x0)
        for left, right in zip(boxes, boxes[1:]):
            assert left.x1 <= right.x0, f"tick labels overprint: {[t.get_text() for t in shown]}"


def test_sweep_figure_order_legend_and_long_title(sweep):
    rows, meta = sweep
    fig = sweep_figure(rows, meta)
    legend = _legend(fig)
    assert _matrix_order(t.get_text() for t in legend.get_texts()) == ORDER
    # one column per matrix: read across, the first row is H_L, H_o, H_F measured
    first_row = [text for box, text in _legend_rows(legend)][:3]
    assert _matrix_order(first_row) == ORDER and all("measured" in t for t in first_row)
    _check_readable(fig)
    # a title far wider than the figure is broken into lines that fit
    long = {**meta, "config": {**meta["config"], "dataset": "/a/very/long/folder/name/" * 6 + "data.npz"}}
    fig = sweep_figure(rows, long)
    assert fig.axes[0].get_title().count("\n") >= 2
    _check_readable(fig)


def test_spectrum_figure_order_and_layout():
    eig = {m: np.geomspace(1.0, 1e-16, 10) for m in MATRICES}
    fig = spectrum_figure(eig, {m: 5 for m in MATRICES}, {m: 1e-12 for m in MATRICES}, title="spectra: " + "x " * 80)
    legend = _legend(fig)
    assert _matrix_order(t.get_text() for t in legend.get_texts()) == ORDER
    column = [text for box, text in _legend_rows(legend) if box.x0 < legend.get_window_extent().x0 + 60]
    assert _matrix_order(column) == ORDER   # the matrices one below the other
    _check_readable(fig)


def test_density_figure_spike_for_rank_zero_and_thinned_ticks(spectra):
    fig = density_figure(spectra, title="eigenvalue density")
    (ax,) = fig.axes
    assert _matrix_order(t.get_text() for t in _legend(fig).get_texts()) == ORDER
    assert ax.get_xscale() == "symlog"
    _check_readable(fig)
    # the same matrices with H_F of rank 0 (every eigenvalue at 0): a spike, not a smoothed bell
    zero = {**spectra, "H_F": {**spectra["H_F"], "rank": 0,
                               "density": {**spectra["H_F"]["density"], "nodes": [0.0], "weights": [1.0]}}}
    fig = density_figure(zero, title="eigenvalue density")
    (ax,) = fig.axes
    (line,) = [ln for ln in ax.get_lines() if ln.get_label().startswith(TEX["H_F"])]
    np.testing.assert_array_equal(line.get_xdata(), [0.0, 0.0])      # vertical, at 0
    np.testing.assert_array_equal(line.get_ydata(), [0.0, 1.0])      # the whole height (axes fraction)
    assert "all at 0" in line.get_label()
    _check_readable(fig)


def test_block_density_rank_zero_blocks_are_spikes(spectra):
    blocks = spectra["blocks"]
    assert all(b["H_F"]["rank"] == 0 for b in blocks.values())   # measured: a linear network's H_F blocks
    fig = block_density_figure(spectra, title="eigenvalue density of the diagonal blocks: " + "y " * 90)
    assert [ax.get_ylabel().split("\n")[0] for ax in fig.axes] == [f"{TEX[m]} blocks" for m in MATRICES]
    h_f = fig.axes[2]
    spikes = [ln for ln in h_f.get_lines() if not ln.get_label().startswith("_") and "all at 0" in ln.get_label()]
    assert len(spikes) == len(blocks)
    for ln in spikes:
        np.testing.assert_array_equal(ln.get_xdata(), [0.0, 0.0])
    assert h_f.get_ylim() == fig.axes[0].get_ylim() or h_f.get_ylim() == fig.axes[1].get_ylim()
    for ax in fig.axes[:2]:   # blocks of positive rank: smoothed curves, no spike
        assert not [ln for ln in ax.get_lines() if "all at 0" in ln.get_label()]
    _check_readable(fig)


def test_training_figure_order_and_layout(tmp_path):
    out = tmp_path / "train"
    assert main(["train", "--dataset", "gaussian", "--n", "8", "--dim", "3", "--units", "2", "--K", "2",
                 "--steps", "2", "--checkpoints", "0,2", "--no-compile-cache", "--out", str(out)]) == 0
    (path,) = [p for p in out.rglob("*.json") if "training" in p.parts]
    rows = pd.read_csv(path.with_suffix(".csv"), keep_default_na=False, dtype={"kind": str})
    fig = training_figure(rows, json.loads(path.read_text()))
    legend = _legend(fig)
    assert _matrix_order(t.get_text() for t in legend.get_texts()) == ORDER
    _check_readable(fig)


def test_grid_figure_legend_below_every_panel(tmp_path):
    from hessrank.grid import load_grid, run_point
    from hessrank.grid.spec import text_value
    from hessrank.plotting import grid_figure

    path = tmp_path / "g.toml"
    path.write_text('[grid]\ndataset = "gaussian"\nn = 10\ndim = 3\nK = 2\nunits = "2"\n'
                    'activation = ["linear", "relu"]\n')
    grid = load_grid(path)
    rows = [{"point": p.id, **{k: text_value(v) for k, v in p.values.items()}, **run_point(p.config)}
            for p in grid.points]
    fig = grid_figure(pd.DataFrame(rows), grid)
    assert [ax.get_title().split(" — ")[0] for ax in fig.axes[:3]] == [f"rank {TEX[m]}" for m in MATRICES]
    _check_readable(fig)
