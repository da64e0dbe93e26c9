"""One writer's session on a stored table, shared by sweeps and grids.

Inside :func:`stored_session` the table's lock is held, its identity is claimed (a
file of another configuration is refused), the stored rows are read, and the JSON
records the stored session (start, host, provenance); when the block ends, even by an
error, the session's end, what it computed and whether the table is complete are
written.
"""

from __future__ import annotations

import contextlib
import datetime
import platform
from collections.abc import Callable
from dataclasses import dataclass, field

from .identity import config_hash
from .tables import ResultTable


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


@dataclass
class Session:
    """The open session: ``rows`` by key, ``meta`` (the JSON), ``record`` (the stored session's
    entry in ``meta["sessions"]``), ``computed`` (keys it stored) and
    ``complete`` (set by the caller: whether every wanted row is stored)."""

    table: ResultTable
    rows: dict
    meta: dict
    record: dict
    stored_before: int
    computed: list = field(default_factory=list)
    complete: bool = False
    #: extra fields of the stored session's record, written when it ends (they win over the defaults)
    extra: dict = field(default_factory=dict)
    #: damaged stored lines set aside when the session opened (one line each), to be recomputed
    set_aside: list = field(default_factory=list)

    def store(self, key, row: dict, order) -> None:
        """Keep ``row`` under ``key`` and rewrite the CSV (atomically) with the rows in ``order``."""
        self.rows[key] = row
        self.table.write_rows([self.rows[k] for k in order(self.rows)])
        self.computed.append(key)


@contextlib.contextmanager
def stored_session(table: ResultTable, identity: dict, *, describe: dict, key: Callable[[dict], object],
                   provenance: dict, done: Callable[[dict], bool] = lambda row: True):
    """Open a :class:`Session` on ``table`` for ``identity``; ``describe`` adds fields to the
    JSON, ``key(row)`` is a stored row's key, ``done(row)`` whether a stored row counts as
    finished (``stored_before``)."""
    with table.lock():
        old = table.claim(identity)
        rows = {key(row): row for row in table.read_rows(strict=False)}
        set_aside = []
        if table.rejected:  # damaged lines: kept aside, out of the results, recomputed
            side = table.set_aside()
            set_aside = [f"{table.csv_path} line {number}: {reason} (set aside in {side.name}; recomputed)"
                         for number, reason, _ in table.rejected]
            table.write_rows(rows.values())
        record = {"started": now(), "finished": None, "computed": [], "host": platform.node(),
                  "provenance": provenance, **({"set_aside": set_aside} if set_aside else {})}
        meta = {"identity": identity, "hash": config_hash(identity), **describe, "columns": list(table.columns),
                "sessions": [*old.get("sessions", []), record], "complete": False}
        table.write_meta(meta)
        session = Session(table=table, rows=rows, meta=meta, record=record,
                          stored_before=sum(bool(done(r)) for r in rows.values()), set_aside=set_aside)
        try:
            yield session
        finally:
            record.update({"finished": now(), "computed": list(session.computed), **session.extra})
            meta["complete"] = bool(session.complete)
            table.write_meta(meta)
