"""Grids with ``blocks``: each point's per-block ranks in the side table, equal to ``run``'s;
a grid without blocks stores what it stored before; bad values refused in one line."""

import csv
from pathlib import Path

import pandas as pd
import pytest
from datafiles import write_file
from processes import csv_rows

from hessrank import ConfigError, run
from hessrank.cli import main
from hessrank.grid import format_grid_summary, load_grid, run_grid
from hessrank.plotting import grid_figure
from hessrank.store import BLOCK_COLUMNS, RESULT_COLUMNS

SUFFIX = {"H_L": "L", "H_o": "o", "H_F": "F"}

# two networks (different layers, so different block names) × both ways to cut θ
BLOCKS_GRID = """
[grid]
dataset = "gaussian"
n = 12
dim = 4
K = 3
bias = true
loss = "cross"
units = ["3", "2,2"]
blocks = ["layers", "leaves"]
"""


def test_grid_stores_each_points_block_ranks_as_run_computes_them(cluster, tmp_path, capsys):
    grid = load_grid(write_file(tmp_path, "blocks.toml", BLOCKS_GRID))
    assert [(p.config.units, p.blocks) for p in grid.points] == [
        ((3,), "layers"), ((3,), "leaves"), ((2, 2), "layers"), ((2, 2), "leaves")]
    assert len({p.id for p in grid.points}) == 4  # the same network with other blocks is another point
    outcome = run_grid(grid, out=tmp_path, client=cluster)
    assert [r["status"] for r in outcome.rows] == ["done"] * 4, outcome.rows
    rows = csv_rows(outcome.table.csv_path)
    assert list(rows[0]) == ["point", "dataset", "n", "dim", "K", "bias", "loss", "units", "blocks",
                             *RESULT_COLUMNS, "status", "worker", "error"]
    side = outcome.table.csv_path.with_name(outcome.table.stem + "_blocks.csv")
    assert outcome.blocks_table.csv_path == side
    assert f"blocks: {side}" in format_grid_summary(outcome)
    block_rows = csv_rows(side)
    assert list(block_rows[0]) == ["entry", "point", *BLOCK_COLUMNS]

    names = {}
    for point, row in zip(grid.points, rows):
        ref = run(point.config, blocks=point.blocks)  # the same configuration, in this process
        mine = [b for b in block_rows if b["point"] == point.id]
        assert [b["block"] for b in mine] == list(ref.blocks), point.label()
        names[point.label()] = [b["block"] for b in mine]
        for b in mine:
            want = ref.blocks[b["block"]]
            assert b["entry"] == f"{point.id}:{b['block']}" and int(b["size"]) == want.size
            for m, s in SUFFIX.items():
                assert int(b[f"rank_{s}"]) == want.ranks[m].rank, (point.label(), b["block"], m)
                assert float(b[f"tol_{s}"]) == pytest.approx(want.ranks[m].tol, rel=1e-12)
        assert sum(int(b["size"]) for b in mine) == ref.p == int(row["num_params"])
        for m, s in SUFFIX.items():  # the main row is the whole matrices', as without blocks
            assert int(row[f"rank_{s}"]) == ref.ranks[m].rank
    assert names == {"units=3, blocks=layers": ["layer1", "layer2"],
                     "units=3, blocks=leaves": ["W1", "b1", "W2", "b2"],
                     "units=2,2, blocks=layers": ["layer1", "layer2", "layer3"],
                     "units=2,2, blocks=leaves": ["W1", "b1", "W2", "b2", "W3", "b3"]}

    # a rerun computes nothing; a point whose blocks are missing (killed between its row and its
    # blocks) is measured again, the others are not
    again = run_grid(grid, out=tmp_path, client=cluster)
    assert again.computed == [] and csv_rows(side) == block_rows
    lost = grid.points[2].id
    with open(side, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(block_rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(b for b in block_rows if b["point"] != lost)
    again = run_grid(grid, out=tmp_path, client=cluster)
    assert again.computed == [lost]
    assert [(b["point"], b["block"], b["rank_o"]) for b in csv_rows(side)] == \
        [(b["point"], b["block"], b["rank_o"]) for b in block_rows]
    assert [r["point"] for r in csv_rows(outcome.table.csv_path)] == [p.id for p in grid.points]

    # the grid figure reads the main table; the blocks column is one more option to facet by
    assert main(["plot", "--grid", str(grid.path), "--out", str(tmp_path)]) == 0
    assert Path(capsys.readouterr().out.split()[0]).name.endswith("_grid.png")
    fig = grid_figure(pd.read_csv(outcome.table.csv_path, dtype=str, keep_default_na=False), grid, facet="blocks")
    assert len(fig.axes) == 2 * 3


def test_a_grid_without_blocks_keeps_its_columns_and_point_ids(tmp_path):
    text = '[grid]\ndataset = "gaussian"\nn = 12\ndim = 4\nK = 3\nbias = true\nunits = ["3", "2,2"]\n'
    grid = load_grid(write_file(tmp_path, "ids.toml", text))
    assert not grid.blocks and all(p.blocks is None for p in grid.points)
    assert grid.columns == ("point", "dataset", "n", "dim", "K", "bias", "units", *RESULT_COLUMNS,
                            "status", "worker", "error")
    # the ids and the table this grid had before grids knew blocks (computed on main at a66592a)
    assert [p.id for p in grid.points] == ["c1e58f5785", "a114e42f3a"]
    assert grid.table(tmp_path).stem == "grid_af4a3bf660"
    with_blocks = load_grid(write_file(tmp_path, "ids2.toml", text + 'blocks = "layers"\n'))
    assert [p.config for p in with_blocks.points] == [p.config for p in grid.points]
    assert not {p.id for p in with_blocks.points} & {p.id for p in grid.points}


@pytest.mark.parametrize("value, shown", [('"x"', "'x'"), ("3", "3"), ('["layers", "layer"]', "'layer'"),
                                          ("true", "True")])
def test_bad_blocks_are_refused_in_one_line_before_any_work(tmp_path, capsys, value, shown):
    path = write_file(tmp_path, "bad.toml", f'[grid]\ndataset = "gaussian"\nn = 6\ndim = 3\nblocks = {value}\n')
    with pytest.raises(ConfigError) as info:
        load_grid(path)
    assert f"[grid] blocks = {shown}: not one of leaves, layers" in str(info.value)
    assert main(["grid", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hessian-rank grid: error: grid file") and err.count("\n") == 1
    assert f"blocks = {shown}: not one of leaves, layers" in err
    assert not (tmp_path / "out").exists()
