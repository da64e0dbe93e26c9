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
