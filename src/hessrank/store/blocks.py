"""Per-block ranks beside a stored table: ``<stem>_blocks.csv``, one row per (point, block).

The main table keeps its columns (:data:`~hessrank.store.RESULT_COLUMNS`, so tables stored
before blocks existed stay readable); asked for blocks (``--blocks layers``), a sweep,
grid or training run also writes a side table whose rows are keyed by ``entry`` =
``<point>:<block>``: the swept value (or step, or grid point), the block's name and
size, and the ranks, tolerances and gaps of its diagonal blocks of H_L, H_o, H_F
(counted at the whole matrix's tolerance). It is written under the main table's lock,
atomically, after the point's main row.
"""

from __future__ import annotations

from ..matrices import SUFFIX
from .rows import format_float
from .tables import ResultTable

#: after ``entry`` and the point's key column
BLOCK_COLUMNS = ("block", "size", "rank_L", "rank_o", "rank_F", "tol_L", "tol_o", "tol_F", "gap_L", "gap_o", "gap_F")


class BlockTable:
    """The side table of ``table`` whose points are named by the column ``key``; ``rows``:
    ``{point text: [row, …]}`` as stored."""

    def __init__(self, table: ResultTable, key: str):
        self.key = key
        self.table = ResultTable(table.folder, f"{table.stem}_blocks", ("entry", key, *BLOCK_COLUMNS),
                                 ints=("size", key) if key == "step" else ("size",))
        self.rows: dict[str, list[dict]] = {}
        for row in self.table.read_rows(strict=False):
            self.rows.setdefault(row[key], []).append(row)

    def has(self, point) -> bool:
        """Whether the blocks of ``point`` are stored."""
        return str(point) in self.rows

    def store(self, point, blocks: dict, order=None) -> None:
        """Keep the :class:`~hessrank.measure.blocks.BlockRanks` of ``point`` and rewrite the CSV
        (points in ``order(points)``, default by value; blocks in their own order)."""
        self.rows[str(point)] = [block_row(self.key, point, name, b) for name, b in blocks.items()]
        points = order(self.rows) if order is not None else sorted(self.rows, key=_by_value)
        self.table.write_rows([row for p in points for row in self.rows[p]])


def _by_value(point: str):
    return (0, int(point), "") if point.isdigit() else (1, 0, point)


def block_row(key: str, point, name: str, b) -> dict[str, str]:
    """One side-table row: the block ``name`` (a :class:`~hessrank.measure.blocks.BlockRanks`) of ``point``."""
    row = {"entry": f"{point}:{name}", key: str(point), "block": name, "size": str(b.size)}
    for m, s in SUFFIX.items():
        row[f"rank_{s}"] = str(b.ranks[m].rank)
    for m, s in SUFFIX.items():
        row[f"tol_{s}"] = format_float(b.ranks[m].tol)
    for m, s in SUFFIX.items():
        row[f"gap_{s}"] = format_float(b.ranks[m].gap_decades)
    return row
