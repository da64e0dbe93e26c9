"""hessian_rank.ipynb runs top to bottom offline; its rank assertions are computed vs predicted."""

import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from build_notebook import CELLS, NOTEBOOK, build, execute  # noqa: E402


def test_committed_notebook_is_current_and_has_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert [c.source for c in nb.cells] == [src for _, src in CELLS], "run python3 tools/build_notebook.py"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs for c in code), "every code cell of the committed notebook shows its output"
    assert not any(o.output_type == "error" for c in code for o in c.outputs)


def test_notebook_executes_without_error(tmp_path):
    from nbclient.exceptions import CellExecutionError

    nb = build()
    try:
        execute(nb, tmp_path, timeout=300)
    except CellExecutionError as err:  # a failing cell, e.g. a rank that differs from its prediction
        pytest.fail(f"notebook cell failed: {str(err)[:2000]}")
    assert (tmp_path / "results" / "store" / "width").is_dir()
