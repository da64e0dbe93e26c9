"""Results as text: one CSV row per measured point, and the spectra of one run.

The ``kind`` column holds the kind of the three predictions: one word (``exact``,
``bound``, ``estimate``, ``-`` for none) when all three share it — what every table
written before kinds were per matrix holds — else one entry per matrix,
``H_L:bound;H_o:exact;H_F:estimate``. :func:`row_kinds` reads both.
"""

from __future__ import annotations

import math

from ..atomicio import atomic_write_text
from ..errors import StoreError
from ..matrices import MATRICES, SUFFIX
from ..theory import KINDS, compare_rank

#: the measured columns every stored row carries, after its own key columns
RESULT_COLUMNS = (
    "rank_L", "rank_o", "rank_F", "pred_L", "pred_o", "pred_F", "kind", "num_params", "r",
    "tol_L", "tol_o", "tol_F", "gap_L", "gap_o", "gap_F", "seconds", "method",
)


#: stored columns holding a count (non-negative integer text)
INT_COLUMNS = frozenset({"rank_L", "rank_o", "rank_F", "pred_L", "pred_o", "pred_F", "num_params", "r",
                         "n", "width", "depth", "channels", "index"})
#: stored columns holding a float (``inf`` allowed, NaN not); gaps may be empty (no cut)
FLOAT_COLUMNS = frozenset({"tol_L", "tol_o", "tol_F", "gap_L", "gap_o", "gap_F", "seconds"})
_MAY_BE_EMPTY = frozenset({"gap_L", "gap_o", "gap_F"})
#: a grid row's status; only ``done`` rows carry results
ROW_STATUSES = ("done", "failed", "skipped")


def row_problem(row: dict, columns, *, floats=frozenset(), ints=frozenset()) -> str | None:
    """What is wrong with one stored row (text by column, as read from the CSV), or
    ``None`` if it is well formed: every column present, counts non-negative integers,
    floats numbers (not NaN), a grid row's status known; rows of a failed or skipped
    grid point may leave the result columns empty. ``floats`` and ``ints``: a table's own
    numeric columns, beside :data:`FLOAT_COLUMNS` and :data:`INT_COLUMNS`."""
    float_columns, int_columns = FLOAT_COLUMNS | frozenset(floats), INT_COLUMNS | frozenset(ints)
    missing = [c for c in columns if row.get(c) is None]
    if missing:
        return f"missing column(s) {', '.join(missing)} (the line is cut short)"
    status = row.get("status")
    if "status" in columns and status not in ROW_STATUSES:
        return f"status {status!r} is not one of {', '.join(ROW_STATUSES)}"
    results_optional = status is not None and status != "done"
    for c in columns:
        text = row[c]
        if text == "" and (results_optional or c in _MAY_BE_EMPTY) and c in (int_columns | float_columns) - {
                "n", "width", "depth", "channels", "index"}:
            continue
        if c in int_columns and not (text.isascii() and text.isdigit()):
            return f"column {c} = {text!r} is not a non-negative integer"
        if c in float_columns:
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
    """The :data:`RESULT_COLUMNS` of one :class:`~hessrank.Result`, as CSV text."""
    pred = result.prediction
    row = {}
    for name, s in SUFFIX.items():
        row[f"rank_{s}"] = str(result.ranks[name].rank)
    for name, s in SUFFIX.items():
        row[f"pred_{s}"] = str(getattr(pred, name))
    row["kind"] = encode_kinds(pred.kinds)
    row["num_params"] = str(result.p)
    row["r"] = str(result.r)
    for name, s in SUFFIX.items():
        row[f"tol_{s}"] = format_float(result.ranks[name].tol)
    for name, s in SUFFIX.items():
        row[f"gap_{s}"] = format_float(result.ranks[name].gap_decades)
    row["seconds"] = f"{result.seconds:.3f}"
    row["method"] = result.method_label
    return row


def encode_kinds(kinds: dict) -> str:
    """The ``kind`` cell of a row: one word when the three matrices share a kind, else
    ``H_L:<kind>;H_o:<kind>;H_F:<kind>`` (``-`` for no prediction)."""
    words = [kinds.get(m) or "-" for m in MATRICES]
    if len(set(words)) == 1:
        return words[0]
    return ";".join(f"{m}:{w}" for m, w in zip(MATRICES, words))


def row_kinds(row: dict) -> dict[str, str | None]:
    """``{matrix: kind or None}`` from a stored row's ``kind`` cell (either form of
    :func:`encode_kinds`). Raises :class:`~hessrank.errors.StoreError` on anything else."""
    cell = str(row.get("kind", "")).strip()
    allowed = (*KINDS, "-")
    if ":" not in cell:
        if cell not in allowed:
            raise StoreError.about("out", f"stored kind {cell!r} is not one of {', '.join(allowed)}")
        return dict.fromkeys(MATRICES, None if cell == "-" else cell)
    kinds = {}
    for entry in cell.split(";"):
        name, _, word = entry.partition(":")
        if name not in MATRICES or word not in allowed or name in kinds:
            raise StoreError.about("out", f"stored kind {cell!r}: expected H_L:<kind>;H_o:<kind>;H_F:<kind> "
                                          f"with kinds {', '.join(allowed)}")
        kinds[name] = None if word == "-" else word
    if set(kinds) != set(MATRICES):
        raise StoreError.about("out", f"stored kind {cell!r}: needs an entry for each of {', '.join(MATRICES)}")
    return {m: kinds[m] for m in MATRICES}


def row_comparisons(row: dict) -> dict[str, tuple[str | None, str | None]]:
    """``{matrix: (kind, comparison)}`` of one stored row, the comparison as
    :func:`~hessrank.theory.compare_rank` gives it (``equal``, ``differs``, ``below``,
    ``violated``)."""
    kinds = row_kinds(row)
    out = {}
    for name, s in SUFFIX.items():
        pred = row.get(f"pred_{s}", "")
        predicted = int(pred) if str(pred).strip() not in ("", "None") else None
        out[name] = (kinds[name], compare_rank(int(row[f"rank_{s}"]), predicted, kinds[name]))
    return out


def count_comparisons(rows) -> dict[str, int]:
    """Over every (row, matrix): ``<kind>_ranks`` (how many ranks have a prediction of
    that kind) and ``<kind>_<comparison>`` (``exact_equal``, ``bound_violated``, …), for
    every kind and comparison, zeros included."""
    counts = {f"{k}_{c}": 0 for k in KINDS for c in ("ranks", "equal", "differs", "below", "violated")}
    for row in rows:
        for kind, comparison in row_comparisons(row).values():
            if kind is None:
                continue
            counts[f"{kind}_ranks"] += 1
            counts[f"{kind}_{comparison}"] += 1
    return counts


def row_mark(row: dict) -> str:
    """``"> bound!"`` when a measured rank exceeds its bound, ``"≠"`` when one differs
    from an exact prediction or an estimate, else ``""``."""
    comparisons = [c for _, c in row_comparisons(row).values()]
    if "violated" in comparisons:
        return "> bound!"
    return "≠" if "differs" in comparisons else ""


def comparison_lines(c: dict) -> list[str]:
    """One line per kind of prediction present in the counts of
    :func:`~hessrank.store.count_comparisons` (ranks counted per point and matrix)."""
    lines = []
    if c["exact_ranks"]:
        lines.append(f"exact:    {c['exact_equal']} of {c['exact_ranks']} ranks equal their prediction"
                     + (f" ({c['exact_differs']} differ)" if c["exact_differs"] else ""))
    if c["bound_ranks"]:
        lines.append(f"bound:    {c['bound_violated']} of {c['bound_ranks']} ranks above their bound (violations"
                     f"{': the bound or the measurement is wrong' if c['bound_violated'] else ''}); "
                     f"{c['bound_equal']} equal to it, {c['bound_below']} below")
    if c["estimate_ranks"]:
        lines.append(f"estimate: {c['estimate_equal']} of {c['estimate_ranks']} ranks equal the estimate "
                     "(a reference line, no guarantee)")
    return lines


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
