"""One writer's session on a stored table, and the runner that sweeps, training and grids share.

Inside :func:`stored_session` the table's lock is held, its identity is claimed (a
file of another configuration is refused), the stored rows are read, and the JSON
records the stored session (start, host, provenance); when the block ends, even by an
error, the session's end, what it computed and whether the table is complete are
written.

:func:`stored_run` is the skeleton of every stored computation: describe it, open its
stored session, list the points still missing (not stored, not finished, or without the
per-block ranks asked for), measure and store them one by one with progress, and record
whether the table is complete. The caller brings only what a point is and how it is
measured.
"""

from __future__ import annotations

import contextlib
import datetime
import platform
from collections.abc import Callable
from dataclasses import dataclass, field

from .blocks import BlockTable
from .identity import config_hash
from .tables import ResultTable, StoredOutcome


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


@dataclass
class Job:
    """A stored computation in progress (see :func:`stored_run`): its ``session``, the
    ``outcome`` it returns, the ``missing`` keys (in the wanted order), the side table of the
    per-block ranks (``side``, or ``None``) and the progress ``bar`` (or ``None``)."""

    session: Session
    outcome: StoredOutcome
    missing: list
    side: BlockTable | None
    bar: object | None
    order: Callable
    side_order: Callable | None = None

    def store(self, key, row: dict, blocks=None) -> None:
        """Keep ``row`` (and the point's per-block ranks ``blocks``, when the side table is
        kept) under ``key``, both written at once; count ``key`` as computed."""
        self.session.store(key, row, order=self.order)
        if blocks is not None and self.side is not None:
            self.side.store(key, blocks, order=self.side_order)
        self.outcome.computed.append(key)

    def begin(self, label: str) -> None:
        """Show that the point ``label`` is being measured."""
        if self.bar is not None:
            self.bar.begin(label)

    def end(self, label: str, message: str, next_label: str | None = None) -> None:
        """Show that the point ``label`` is done (``message``), then ``next_label`` begun."""
        if self.bar is not None:
            self.bar.end(label, message)
            if next_label is not None:
                self.bar.begin(next_label)


@contextlib.contextmanager
def stored_run(table: ResultTable, identity: dict, *, describe: dict, key: Callable[[dict], object], wanted,
               provenance: dict, outcome: Callable[..., StoredOutcome], block_column: str | None = None,
               wants_blocks: Callable[[object], bool] = lambda k: True, done: Callable[[dict], bool] = lambda r: True,
               order: Callable = sorted, side_order: Callable | None = None, progress=None):
    """Open the stored session of a computation of the points ``wanted`` and yield its :class:`Job`.

    ``key(row)``: a stored row's key; ``done(row)``: whether a stored row is finished (a
    failed grid point is not); ``block_column``: keep the per-block ranks in the side table
    keyed by this column (``None``: no side table), for the keys where ``wants_blocks(key)``;
    ``outcome(table=…, stored_before=…, set_aside=…)`` makes the result, whose ``rows`` are
    set to every stored row in ``order`` when the block ends; ``progress``: ``None`` or a
    factory ``total -> Progress``. A key is missing when its row is not stored or not
    finished, or its blocks are wanted and not stored. When the block ends, even by an
    error, the bar is closed and the table marked complete if every wanted row is finished.
    """
    with stored_session(table, identity, describe=describe, key=key, provenance=provenance, done=done) as session:
        side = BlockTable(table, block_column) if block_column is not None else None
        rows = session.rows
        missing = [k for k in wanted if k not in rows or not done(rows[k])
                   or (side is not None and wants_blocks(k) and not side.has(k))]
        bar = progress(len(missing)) if (progress is not None and missing) else None
        job = Job(session=session, missing=missing, side=side, bar=bar, order=order, side_order=side_order,
                  outcome=outcome(table=table, stored_before=session.stored_before, set_aside=session.set_aside))
        try:
            yield job
        finally:
            if bar is not None:
                bar.close()
            session.complete = all(k in rows and done(rows[k]) for k in wanted)
        job.outcome.rows = [rows[k] for k in order(rows)]
