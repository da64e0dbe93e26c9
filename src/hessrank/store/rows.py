"""Results as text: one CSV row per measured point, and the spectra of one run."""

from __future__ import annotations

import math

from ..atomicio import atomic_write_text
from ..matrices import MATRICES, SUFFIX

#: the measured columns every stored row carries, after its own key columns
RESULT_COLUMNS = (
    "rank_L", "rank_o", "rank_F", "pred_L", "pred_o", "pred_F", "kind", "num_params", "r",
    "tol_L", "tol_o", "tol_F", "gap_L", "gap_o", "gap_F", "seconds", "method",
)


#: stored columns holding a count (non-negative integer text)
INT_COLUMNS = frozenset({"rank_L", "rank_o", "rank_F", "pred_L", "pred_o", "pred_F", "num_params", "r",
                         "n", "width", "depth", "index"})
#: stored columns holding a float (``inf`` allowed, NaN not); gaps may be empty (no cut)
FLOAT_COLUMNS = frozenset({"tol_L", "tol_o", "tol_F", "gap_L", "gap_o", "gap_F", "seconds"})
_MAY_BE_EMPTY = frozenset({"gap_L", "gap_o", "gap_F"})
#: a grid row's status; only ``done`` rows carry results
ROW_STATUSES = ("done", "failed", "skipped")


def row_problem(row: dict, columns) -> str | None:
    """What is wrong with one stored row (text by column, as read from the CSV), or
    ``None`` if it is well formed: every column present, counts non-negative integers,
    floats numbers (not NaN), a grid row's status known; rows of a failed or skipped
    grid point may leave the result columns empty."""
    missing = [c for c in columns if row.get(c) is None]
    if missing:
        return f"missing column(s) {', '.join(missing)} (the line is cut short)"
    status = row.get("status")
    if "status" in columns and status not in ROW_STATUSES:
        return f"status {status!r} is not one of {', '.join(ROW_STATUSES)}"
    results_optional = status is not None and status != "done"
    for c in columns:
        text = row[c]
        if text == "" and (results_optional or c in _MAY_BE_EMPTY) and c in (INT_COLUMNS | FLOAT_COLUMNS) - {
                "n", "width", "depth", "index"}:
            continue
        if c in INT_COLUMNS and not (text.isascii() and text.isdigit()):
            return f"column {c} = {text!r} is not a non-negative integer"
        if c in FLOAT_COLUMNS:
            try:
                value = float(text)
            except ValueError:
                return f"column {c} = {text!r} is not a number"
            if value != value:
                return f"column {c} is NaN"
    if not results_optional and "kind" in columns and not row.get("kind"):
        return "column kind is empty"
    return None


def format_float(x) -> str:
    """Exact, round-trip text of a float for CSV; ``""`` for None, ``inf`` for infinity."""
    if x is None:
        return ""
    x = float(x)
    return "inf" if math.isinf(x) else repr(x)


def result_row(result) -> dict[str, str]:
    """The :data:`RESULT_COLUMNS` of one :class:`~hessrank.measure.Result`, as CSV text."""
    pred = result.prediction
    row = {}
    for name, s in SUFFIX.items():
        row[f"rank_{s}"] = str(result.ranks[name].rank)
    for name, s in SUFFIX.items():
        row[f"pred_{s}"] = str(getattr(pred, name))
    row["kind"] = pred.kind
    row["num_params"] = str(result.p)
    row["r"] = str(result.r)
    for name, s in SUFFIX.items():
        row[f"tol_{s}"] = format_float(result.ranks[name].tol)
    for name, s in SUFFIX.items():
        row[f"gap_{s}"] = format_float(result.ranks[name].gap_decades)
    row["seconds"] = f"{result.seconds:.3f}"
    row["method"] = result.method_label
    return row


def row_matches_prediction(row: dict) -> bool:
    """Whether a stored row's three measured ranks equal its three predictions."""
    return all(str(row[f"rank_{s}"]) == str(row[f"pred_{s}"]) for s in SUFFIX.values())


def spectrum_csv(result) -> str:
    """CSV text: one row per index, eigenvalues of H_L, H_o, H_F by decreasing magnitude."""
    cols = [result.ranks[k].eigenvalues for k in MATRICES]
    size = max(c.size for c in cols)
    lines = ["index,H_L,H_o,H_F"]
    for i in range(size):
        vals = [repr(float(c[i])) if i < c.size else "0.0" for c in cols]
        lines.append(f"{i + 1}," + ",".join(vals))
    lines.append("")
    return "\n".join(lines)


def write_spectrum_csv(path, result) -> None:
    """Write the spectra of one result (see :func:`spectrum_csv`) atomically."""
    atomic_write_text(path, spectrum_csv(result))
