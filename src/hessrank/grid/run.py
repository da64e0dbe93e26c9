"""Running a grid on Dask: one process writes the store, workers measure points."""

from __future__ import annotations

import contextlib
import os
import platform
import threading
from dataclasses import dataclass
from functools import partial

from ..atomicio import check_writable
from ..compile_cache import enable_compile_cache
from ..config import RunConfig
from ..data import load_dataset
from ..errors import ConfigError, HessrankError
from ..matrices import SUFFIX
from ..measure import memory_limit
from ..measure.provenance import provenance
from ..measure.run import run
from ..store import (
    BlockTable,
    ResultTable,
    StoredOutcome,
    comparison_lines,
    count_comparisons,
    result_row,
    row_kinds,
    stored_run,
)
from .spec import Grid, GridPoint, plan_point, text_value

STATUS = ("done", "failed", "skipped")
#: the entry of :func:`run_point`'s answer that holds the per-block ranks (not a column of the row)
BLOCK_RANKS = "block_ranks"
#: seconds to wait for a scheduler given by address (a silent listener must not hang the grid)
CONNECT_TIMEOUT_S = 10


def run_point(config: RunConfig, worker_limit: int | None = None, compile_cache: str | None = None, *,
              blocks: str | None = None, threads: int | None = None, devices=None) -> dict:
    """Run one point (on a Dask worker) planning memory within ``worker_limit`` bytes;
    return its result columns, status and worker. An error becomes ``status = failed``
    with its one-line message: it never escapes. ``compile_cache``: the folder of JAX's
    persistent compilation cache on the worker (``None``: off). ``blocks`` (``"leaves"``,
    ``"layers"``): also rank the diagonal blocks, as ``run`` does; a finished point's
    answer then holds their :class:`~hessrank.measure.blocks.BlockRanks` under :data:`BLOCK_RANKS`.
    ``threads``, ``devices``: as for :func:`~hessrank.measure.run`, on the worker."""
    if compile_cache:
        enable_compile_cache(compile_cache)
    try:
        from distributed import get_worker

        worker = get_worker().address
    except (ImportError, ValueError):
        worker = platform.node()
    try:
        with memory_limit(worker_limit):
            result = run(config, blocks=blocks, threads=threads, devices=devices)
        row = result_row(result)
        row.update(status="done", error="")
        if blocks is not None:
            row[BLOCK_RANKS] = result.blocks
    except Exception as err:  # noqa: BLE001 - any failure is recorded, the grid goes on
        row = {"status": "failed", "error": _one_line(err)}
    row["worker"] = worker
    return row


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if not isinstance(err, HessrankError) else text


@dataclass(kw_only=True)
class GridOutcome(StoredOutcome):
    """What :func:`run_grid` left in the store (``computed``: point ids; ``scheduler``:
    the Dask scheduler's address)."""

    grid: Grid
    scheduler: str = ""
    #: the side table of the per-block ranks (``None``: no point asked for blocks)
    blocks_table: ResultTable | None = None


def _dataset_shape(config: RunConfig) -> tuple[int, int]:
    """``(n, d)`` of a point's data: from the options, or from the data set's defaults."""
    if config.dim is not None and config.n is not None:
        return int(config.n), int(config.dim)
    data = load_dataset(config)
    return data.n, data.d


def run_grid(grid: Grid, *, out="results", workers: int | None = None, scheduler: str | None = None,
             memory_limit=None, client=None, progress=None, compile_cache: str | None = None,
             threads: int | None = None, devices=None) -> GridOutcome:
    """Run every point of ``grid`` without a finished row under ``out``.

    Dask: ``client`` if given, else a client of the cluster at ``scheduler``, else a new
    ``LocalCluster`` of ``workers`` processes (default one per core) with one thread each
    and ``memory_limit`` per worker (Dask's default: the machine's memory shared out).
    ``progress``: ``None`` or a factory ``total -> Progress``. Points that ask for
    ``blocks`` store their per-block ranks in the side table ``<stem>_blocks.csv``
    (:class:`~hessrank.store.BlockTable`, keyed by ``point``); a finished point whose
    blocks are missing there is measured again. ``threads``, ``devices``: each point's BLAS threads
    and JAX devices on its worker (:func:`run_point`).
    """
    table = grid.table(out)
    check_writable(table.csv_path, param="out")
    describe = {
        "task": "grid",
        "grid_file": str(grid.path),
        "grid": {k: [text_value(v) for v in vals] for k, vals in zip(grid.keys, grid.values)},
        "points": [{"point": p.id, "values": {k: text_value(v) for k, v in p.values.items()},
                    "config": p.config.to_dict() if p.config else None, "error": p.error} for p in grid.points],
    }
    with contextlib.ExitStack() as stack:
        finished = {row["point"] for row in table.read_rows(strict=False) if row.get("status") == "done"}
        if grid.blocks:  # a point's blocks are written after its row: a kill between the two leaves it unfinished
            stored, wanted = BlockTable(table, "point"), {p.id for p in grid.points if p.blocks is not None}
            finished = {k for k in finished if k not in wanted or stored.has(k)}
        if client is None and any(p.id not in finished for p in grid.points):
            # connect first: a cluster that cannot be reached leaves nothing in the store
            client = _connect(stack, workers=workers, scheduler=scheduler, memory_limit=memory_limit)
        order = [p.id for p in grid.points]

        def in_grid_order(rows):
            return [k for k in order if k in rows]

        by_id = {p.id: p for p in grid.points}
        # read again under the session's lock: what another run stored before the lock is kept
        job = stack.enter_context(stored_run(
            table, grid.identity(), describe=describe, key=lambda row: row["point"], wanted=order,
            provenance=provenance(), outcome=partial(GridOutcome, grid=grid),
            block_column="point" if grid.blocks else None, wants_blocks=lambda k: by_id[k].blocks is not None,
            done=lambda row: row.get("status") == "done", order=in_grid_order, side_order=in_grid_order,
            progress=progress))
        outcome = job.outcome
        outcome.blocks_table = job.side.table if job.side else None

        def store(point: GridPoint, result: dict) -> None:
            result = dict(result)
            block_ranks = result.pop(BLOCK_RANKS, None)
            row = {"point": point.id, **{k: text_value(v) for k, v in point.values.items()}, **result}
            job.store(point.id, row, blocks=block_ranks)

        try:
            if job.missing:
                outcome.scheduler = _run_on_dask([by_id[k] for k in job.missing], store, job.bar, client,
                                                 compile_cache, threads=threads, devices=devices)
        finally:
            job.session.extra = {"computed": len(outcome.computed), "scheduler": outcome.scheduler}
    return outcome


def _connect(stack, *, workers, scheduler, memory_limit):
    """A Dask client of the cluster at ``scheduler``, or of a new ``LocalCluster``; both
    closed when ``stack`` closes."""
    from distributed import Client, LocalCluster

    if scheduler:
        return stack.enter_context(_client_within(Client, scheduler, CONNECT_TIMEOUT_S))
    import dask

    # a point that takes its worker past the memory limit kills it: it fails at once (no retry that would
    # restart the worker again and again), and a worker near its limit never pauses with work queued
    with dask.config.set({"distributed.scheduler.allowed-failures": 0, "distributed.worker.memory.pause": False}):
        cluster = stack.enter_context(LocalCluster(
            n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True, dashboard_address=None,
            memory_limit="auto" if memory_limit is None else memory_limit))
    return stack.enter_context(Client(cluster))


def _client_within(Client, scheduler: str, seconds: float):
    """A client of the scheduler at ``scheduler``, or :class:`ConfigError` within about
    ``seconds``: Dask's own timeout covers the connection, not a server that accepts it
    and then answers with something else (an HTTP service) or nothing, so the client
    is made in a daemon thread that is abandoned when the time is up."""
    box = {}

    def connect():
        try:
            box["client"] = Client(scheduler, timeout=f"{seconds}s")
        except BaseException as err:  # noqa: BLE001 - reported below, in the caller's thread
            box["error"] = err

    thread = threading.Thread(target=connect, name="hessrank-connect", daemon=True)
    thread.start()
    thread.join(seconds + 5)
    if "client" in box:
        return box["client"]
    why = f"{_one_line(box['error'])[:200]}" if "error" in box else "no Dask answer"
    raise ConfigError.invalid("scheduler", scheduler, f"cannot connect to a Dask scheduler within {seconds} s "
                                                      f"({why})")


def _run_on_dask(todo, store, bar, client, compile_cache, *, threads=None, devices=None) -> str:
    from distributed import as_completed

    limit = _worker_memory_limit(client)
    futures = {}
    for point in todo:
        if point.config is None:
            store(point, {"status": "failed", "error": point.error, "worker": ""})
            _report(bar, point, "failed")
            continue
        try:
            config, reason = plan_point(point.config, _dataset_shape(point.config), limit)
        except Exception as err:  # noqa: BLE001 - e.g. unreadable data: this point fails, the grid goes on
            store(point, {"status": "failed", "error": _one_line(err), "worker": ""})
            _report(bar, point, "failed")
            continue
        if config is None:
            store(point, {"status": "skipped", "error": reason, "worker": ""})
            _report(bar, point, "skipped")
            continue
        future = client.submit(run_point, config, limit, compile_cache, blocks=point.blocks, threads=threads,
                               devices=devices,
                               key=f"hessrank-grid-{point.id}", pure=False)
        futures[future] = point
    for future in as_completed(list(futures)):
        point = futures[future]
        try:
            result = future.result()
        except Exception as err:  # noqa: BLE001 - e.g. KilledWorker: the worker died running the point
            why = _one_line(err)
            if type(err).__name__ == "KilledWorker":
                shown = f" of {limit / 2**20:.0f} MiB" if limit else ""
                why = (f"its worker died while running it (past its memory limit{shown}, or a crash); give the "
                       "workers more memory (--memory-limit) or fewer workers")
            result = {"status": "failed", "error": why, "worker": ""}
        store(point, result)
        _report(bar, point, result.get("status", "failed"), result)
    return str(client.scheduler.address)


def _worker_memory_limit(client) -> int | None:
    """The smallest memory limit of the cluster's workers in bytes (``None``: unlimited)."""
    workers = client.scheduler_info().get("workers", {})
    limits = [w.get("memory_limit") or 0 for w in workers.values()]
    limits = [lim for lim in limits if lim > 0]
    return min(limits) if limits else None


def _report(bar, point: GridPoint, status: str, result: dict | None = None) -> None:
    if bar is None:
        return
    if status == "done":
        kinds = row_kinds(result)
        msg = ", ".join(f"{name} {result['rank_' + s]}/{'≤' if kinds[name] == 'bound' else ''}{result['pred_' + s]}"
                        for name, s in SUFFIX.items()) + " (measured/predicted)"
    else:
        msg = f"{status}: {(result or {}).get('error', '') or point.error or ''}".rstrip(": ")
    bar.end(point.label(), msg)


def summarize(outcome: GridOutcome) -> dict:
    """Counts: points done / failed / skipped, and over the finished points' ranks (one
    per point and matrix) how each stands against its prediction, by kind: ``exact_equal``
    of ``exact_ranks``, ``bound_violated`` / ``bound_equal`` / ``bound_below`` of
    ``bound_ranks``, ``estimate_equal`` of ``estimate_ranks`` (see
    :func:`~hessrank.store.count_comparisons`)."""
    rows = outcome.rows
    done = [r for r in rows if r["status"] == "done"]
    counts = {s: sum(r["status"] == s for r in rows) for s in STATUS}
    counts["points"] = len(outcome.grid.points)
    counts.update(count_comparisons(done))
    return counts


def format_grid_summary(outcome: GridOutcome) -> str:
    """The summary printed at the end of ``hessian-rank grid``."""
    c = summarize(outcome)
    now = set(outcome.computed)
    done_now = sum(r["status"] == "done" and r["point"] in now for r in outcome.rows)
    lines = [
        f"grid {outcome.grid.name}: {c['points']} points: {c['done']} done "
        f"({done_now} run now, {outcome.stored_before} stored before), "
        f"{c['failed']} failed, {c['skipped']} skipped",
        *comparison_lines(c),
    ]
    for row in outcome.rows:
        if row["status"] != "done":
            point = next(p for p in outcome.grid.points if p.id == row["point"])
            lines.append(f"{row['status']}: {point.label()}: {row['error']}")
    lines += [f"rows:   {outcome.table.csv_path}", f"config: {outcome.table.json_path}"]
    if outcome.blocks_table is not None:
        lines.append(f"blocks: {outcome.blocks_table.csv_path}")
    lines += [f"damaged row: {line}" for line in outcome.set_aside]
    if outcome.scheduler:
        lines.append(f"dask:   {outcome.scheduler}")
    return "\n".join(lines)


