"""Figures: the sweep figure and the spectrum figure, checked on the PNG and on the plotted data."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hessrank import RunConfig, run
from hessrank.cli import main
from hessrank.plotting import COLOURS, DPI, FIGSIZE, plot_sweep, spectrum_figure, sweep_figure
from hessrank.sweeps import make_sweep, run_sweep

SIZE = (round(FIGSIZE[0] * DPI), round(FIGSIZE[1] * DPI))


def _colour_pixels(png: Path) -> dict:
    """How many pixels of the PNG have each matrix's colour (within a small tolerance)."""
    img = np.asarray(Image.open(png).convert("RGB")).astype(int)
    counts = {}
    for name, hexcode in COLOURS.items():
        rgb = np.array([int(hexcode[i:i + 2], 16) for i in (1, 3, 5)])
        counts[name] = int(np.count_nonzero(np.abs(img - rgb).max(axis=-1) <= 12))
    return counts


def _labelled_lines(fig):
    (ax,) = fig.axes
    return [line for line in ax.get_lines() if not line.get_label().startswith("_")]


@pytest.fixture(scope="module")
def width_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("store")
    base = RunConfig(dataset="gaussian", n=30, dim=6, K=3, batch_size=10)
    return run_sweep(make_sweep("width", base, widths="2:6:2"), out=out)


@pytest.mark.parametrize("normalize", [None, False])
def test_sweep_png_has_expected_size_series_and_data(width_sweep, normalize):
    paths = plot_sweep(width_sweep.table.json_path, normalize=normalize)
    png, pdf = paths
    assert png.parent == pdf.parent == width_sweep.table.csv_path.parent
    assert png.name.endswith("_rank_per_param.png" if normalize is None else "_rank.png")
    with Image.open(png) as img:
        assert img.format == "PNG" and img.size == SIZE
    assert pdf.read_bytes()[:5] == b"%PDF-"
    counts = _colour_pixels(png)
    assert all(c > 200 for c in counts.values()), counts  # all three matrices are drawn

    rows = pd.read_csv(width_sweep.table.csv_path, keep_default_na=False)
    meta = json.loads(width_sweep.table.json_path.read_text())
    fig = sweep_figure(rows, meta, normalize=normalize)
    lines = _labelled_lines(fig)
    assert len(lines) == 6  # a line (measured) and dots (predicted) per matrix
    measured = [ln for ln in lines if ln.get_linestyle() == "-"]
    dots = [ln for ln in lines if ln.get_linestyle() == "None"]
    assert len(measured) == len(dots) == 3
    assert {ln.get_color() for ln in measured} == set(COLOURS.values())
    scale = rows["num_params"].to_numpy(float) if normalize is None else 1.0
    by_colour = {ln.get_color(): ln for ln in measured}
    for name, col in (("H_L", "rank_L"), ("H_o", "rank_o"), ("H_F", "rank_F")):
        line = by_colour[COLOURS[name]]
        np.testing.assert_array_equal(line.get_xdata(), [2, 4, 6])
        np.testing.assert_allclose(line.get_ydata(), rows[col].to_numpy(float) / scale)
    assert "width" in fig.axes[0].get_xlabel() and "gaussian" in fig.axes[0].get_title()


def test_plot_command_lists_choices_when_several_sweeps_match(width_sweep, capsys):
    out = str(width_sweep.table.csv_path.parents[4])
    base = RunConfig(dataset="gaussian", n=30, dim=6, K=3, batch_size=10, seed=5)
    other = run_sweep(make_sweep("width", base, widths="2"), out=out)
    assert main(["plot", "--task", "width", "--dataset", "gaussian", "--out", out]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "2 stored width sweeps match" in err
    assert "--seed 1" in err and "--seed 5" in err
    assert str(width_sweep.table.csv_path) in err and str(other.table.csv_path) in err
    assert main(["plot", "--task", "width", "--seed", "5", "--normalize", "1", "--out", out]) == 0
    assert capsys.readouterr().out.split()[0].startswith(str(other.table.csv_path.with_suffix("")))
    assert main(["plot", "--task", "width", "--seed", "7", "--out", out]) == 2
    assert "no stored width sweep" in capsys.readouterr().err
    assert main(["plot", "--task", "width", "--units", "3,3", "--out", out]) == 2
    assert "--units '3,3'" in capsys.readouterr().err
    assert main(["plot", "--task", "breadth", "--out", out]) == 2
    assert "--task 'breadth'" in capsys.readouterr().err
    assert main(["plot", "--task", "width", "--normalize", "maybe", "--out", out]) == 2
    assert "--normalize 'maybe'" in capsys.readouterr().err


def test_spectrum_plot_shows_tolerance_and_cut(tmp_path, capsys):
    args = ["--dataset", "gaussian", "--n", "30", "--dim", "6", "--units", "3,4", "--K", "3"]
    assert main(["plot", "--spectrum", *args, "--out", str(tmp_path)]) == 0
    png, pdf = map(Path, capsys.readouterr().out.split())
    assert png.parent == tmp_path / "store/spectrum/mse/gaussian/6x3x4x3"
    with Image.open(png) as img:
        assert img.size == SIZE
    assert all(c > 200 for c in _colour_pixels(png).values())
    meta = json.loads(png.with_name(png.name.replace("_spectrum.png", ".json")).read_text())
    ref = run(RunConfig(dataset="gaussian", n=30, dim=6, units=(3, 4), K=3))
    assert meta["ranks"] == {k: ref.ranks[k].rank for k in ("H_L", "H_o", "H_F")}
    csv_path = png.with_name(png.name.replace("_spectrum.png", ".csv"))
    stamp = csv_path.stat().st_mtime_ns
    assert main(["plot", "--spectrum", *args, "--out", str(tmp_path)]) == 0  # read back, not recomputed
    assert csv_path.stat().st_mtime_ns == stamp

    fig = spectrum_figure(ref.spectra, meta["ranks"], meta["tolerance"], size=ref.p)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    curves = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == ref.p]
    assert len(curves) == 3
    for name in ("H_L", "H_o", "H_F"):
        colour = COLOURS[name]
        curve = next(ln for ln in curves if ln.get_color() == colour)
        np.testing.assert_allclose(curve.get_ydata(), np.abs(ref.spectra[name]))
        flat = [ln for ln in ax.get_lines() if ln.get_color() == colour and ln is not curve]
        ys = {float(ln.get_ydata()[0]) for ln in flat if ln.get_linestyle() == "--"}
        xs = {float(ln.get_xdata()[0]) for ln in flat if ln.get_linestyle() == ":"}
        assert ys == {meta["tolerance"][name]} and xs == {meta["ranks"][name] + 0.5}
        label = curve.get_label()
        rank = ref.ranks[name].rank
        assert f"rank {rank} of {ref.p}" in label and ("gap" in label) == (0 < rank < ref.p)
