"""Grids of runs on a Dask cluster: the Cartesian product of lists of ``run`` options.

A grid file is TOML with one table::

    [grid]
    dataset = ["gaussian", "digits"]
    loss = ["mse", "cross"]
    units = ["10,10", "5,5,5"]
    seed = [1, 2]

Every key is an option of ``hessian-rank run`` (``batch_size`` or ``batch-size``); a
value is a list, or one value. The points are the Cartesian product, in file order;
options not in the file keep their ``run`` defaults.

The points run through :mod:`dask.distributed`: on a ``LocalCluster`` of worker
processes, or on an existing cluster given by its scheduler address. Only this
process writes the store: one CSV row per point, keyed by a hash of the point's full
configuration, written atomically as each point comes back, so a rerun computes only
the points without a finished row, and a point is stored exactly once even when a
worker dies and Dask runs it again elsewhere. A point that fails is stored with its
error; a point whose dense Hessians would not fit in a worker's memory limit runs
matrix-free within that limit, and one that fits neither way is stored as skipped,
with the reason (see :func:`plan_point`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import itertools
import platform
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .config import ConfigError, RunConfig
from .experiment import MATRIX_FREE_SHARE, MIN_SKETCH_VECTORS, dense_memory_bytes, provenance
from .matrixfree import plan_memory
from .models import MLP
from .store import (RESULT_COLUMNS, ResultTable, StoredOutcome, check_writable, config_hash, config_identity,
                    result_row, row_matches_prediction)

#: a point is run dense only if its dense matrices take at most this share of a worker's memory limit
#: (the rest: JAX, the data, Dask's own margin; Dask pauses a worker at 80 % of its limit)
DENSE_SHARE_OF_WORKER_LIMIT = 0.6
STATUS = ("done", "failed", "skipped")


def _option_defaults() -> dict:
    """``{option: default}`` for every option of ``hessian-rank run``."""
    from .cli import run_option_defaults

    return run_option_defaults()


def _text(value) -> str:
    """A grid value as CSV text: ``10,10`` for a list, ``true``/``false`` for a boolean."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


@dataclass(frozen=True)
class GridPoint:
    """One point: its grid ``values``, its configuration (or the ``error`` that made it
    invalid) and ``id``, a hash of everything that defines it."""

    values: dict
    config: RunConfig | None
    error: str | None
    id: str
    varying: tuple[str, ...] = ()

    def label(self) -> str:
        """The options that vary across the grid, e.g. ``loss=cross, seed=2``."""
        keys = self.varying or tuple(self.values)
        return ", ".join(f"{k}={_text(self.values[k])}" for k in keys)


@dataclass(frozen=True)
class Grid:
    """A grid read from ``path``: its ``keys`` with their ``values``, and the ``points``."""

    path: Path
    keys: tuple[str, ...]
    values: tuple[tuple, ...]
    points: tuple[GridPoint, ...]

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def columns(self) -> tuple[str, ...]:
        return ("point", *self.keys, *RESULT_COLUMNS, "status", "worker", "error")

    def identity(self) -> dict:
        return {"task": "grid", "points": [p.id for p in self.points]}

    def table(self, out) -> ResultTable:
        """``<out>/store/grid/<grid name>/grid_<hash>.csv`` (+ ``.json``, ``.lock``)."""
        folder = Path(out, "store", "grid", self.name)
        return ResultTable(folder, f"grid_{config_hash(self.identity())}", self.columns)


def load_grid(path) -> Grid:
    """Read a grid file; refuse (ConfigError, one line) a malformed file, an unknown
    option, or a value that is invalid at every point it appears in."""
    path = Path(path)
    where = f"grid file {str(path)!r}"
    try:
        spec = tomllib.loads(path.read_text())
    except OSError as err:
        raise ConfigError(f"{where}: cannot be read ({err.strerror or err})") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{where}: not valid TOML ({err})") from None
    table = spec.get("grid")
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"{where}: needs a [grid] table of option = [values], e.g. loss = [\"mse\", \"cross\"]")
    defaults = _option_defaults()
    keys, values = [], []
    for raw_key, raw in table.items():
        key = raw_key.replace("-", "_")
        if key not in defaults:
            raise ConfigError(f"{where}: [grid] {raw_key!r} is not an option of hessian-rank run; "
                              f"use one of {', '.join(sorted(defaults))}")
        vals = raw if isinstance(raw, list) else [raw]
        if not vals:
            raise ConfigError(f"{where}: [grid] {raw_key} = []: give at least one value")
        for v in vals:
            if isinstance(v, (dict, datetime.date, datetime.time)) or \
                    (isinstance(v, list) and not all(isinstance(u, int) for u in v)):
                raise ConfigError(f"{where}: [grid] {raw_key} value {v!r}: give numbers, strings or booleans")
        keys.append(key)
        values.append(tuple(vals))
    varying = tuple(k for k, vals in zip(keys, values) if len(vals) > 1)
    points = tuple(_make_point(dict(zip(keys, combo)), defaults, varying) for combo in itertools.product(*values))
    _refuse_values_that_never_work(where, keys, values, points)
    return Grid(path=path, keys=tuple(keys), values=tuple(values), points=points)


def _make_point(values: dict, defaults: dict, varying: tuple) -> GridPoint:
    from .cli import config_from_args

    fields = dict(defaults)
    for key, value in values.items():
        fields[key] = _text(value) if key == "units" else value
    try:
        config = config_from_args(argparse.Namespace(**fields))
    except ConfigError as err:
        ident = {"task": "grid-point", "invalid": {k: _text(v) for k, v in values.items()}}
        return GridPoint(values, None, str(err), config_hash(ident), varying)
    return GridPoint(values, config, None, config_hash(config_identity(config, task="grid-point")), varying)


def _refuse_values_that_never_work(where, keys, values, points) -> None:
    if all(p.config is None for p in points):
        raise ConfigError(f"{where}: no point is valid; e.g. {points[0].label()}: {points[0].error}")
    for key, vals in zip(keys, values):
        for v in vals:
            mine = [p for p in points if p.values[key] == v and type(p.values[key]) is type(v)]
            if mine and all(p.config is None for p in mine):
                raise ConfigError(f"{where}: [grid] {key} = {v!r} is invalid at every point: {mine[0].error}")


def plan_point(config: RunConfig, shape: tuple[int, int], worker_limit: int | None):
    """``(config to run, None)`` or ``(None, reason to skip)`` for one point with data of
    ``shape = (n, d)`` on workers with ``worker_limit`` bytes each (``None``: no limit).
    The one place that picks how a point runs: as configured when its dense matrices fit
    a worker, else matrix-free when its sketches fit, else skipped with the estimates
    and the limit. On the worker, :func:`run_point` plans within the same limit."""
    n, d = shape
    model = MLP(widths=(d, *config.units, config.K), activation=config.activation, bias=config.bias)
    p = model.num_params
    need = dense_memory_bytes(p)
    if not worker_limit or need <= DENSE_SHARE_OF_WORKER_LIMIT * worker_limit:
        return config, None
    # Dense does not fit a worker: matrix-free, if its sketches do.
    plan = plan_memory(p, n, config.K, MATRIX_FREE_SHARE * worker_limit)
    if plan.capacity >= min(p, MIN_SKETCH_VECTORS):
        return config.replace(method="matrix-free"), None
    return None, (f"p = {p} needs about {need / 2**30:.2f} GiB for dense Hessians, more than "
                  f"{DENSE_SHARE_OF_WORKER_LIMIT:.0%} of a worker's memory limit ({worker_limit / 2**30:.2f} GiB), "
                  f"and matrix-free would have room for only {plan.capacity} sketch vectors (at least "
                  f"{min(p, MIN_SKETCH_VECTORS)} needed); give the workers more memory (--memory-limit) "
                  "or use smaller --units/--dim")


def run_point(config: RunConfig, worker_limit: int | None = None) -> dict:
    """Run one point (on a Dask worker) planning memory within ``worker_limit`` bytes;
    return its result columns, status and worker. An error becomes ``status = failed``
    with its one-line message: it never escapes."""
    from .experiment import memory_limit, run

    try:
        from distributed import get_worker

        worker = get_worker().address
    except (ImportError, ValueError):
        worker = platform.node()
    try:
        with memory_limit(worker_limit):
            row = result_row(run(config))
        row.update(status="done", error="")
    except Exception as err:  # noqa: BLE001 - any failure is recorded, the grid goes on
        row = {"status": "failed", "error": _one_line(err)}
    row["worker"] = worker
    return row


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if not isinstance(err, ConfigError) else text


@dataclass(kw_only=True)
class GridOutcome(StoredOutcome):
    """What :func:`run_grid` left in the store (``computed``: point ids; ``scheduler``:
    the Dask scheduler's address)."""

    grid: Grid
    scheduler: str = ""


def _dataset_shape(config: RunConfig) -> tuple[int, int]:
    """``(n, d)`` of a point's data: from the options, or from the data set's defaults."""
    if config.dim is not None and config.n is not None:
        return int(config.n), int(config.dim)
    from .data import load_dataset

    data = load_dataset(config)
    return data.n, data.d


def run_grid(grid: Grid, *, out="results", workers: int | None = None, scheduler: str | None = None,
             memory_limit=None, client=None, progress=None) -> GridOutcome:
    """Run every point of ``grid`` without a finished row under ``out``.

    Dask: ``client`` if given, else a client of the cluster at ``scheduler``, else a new
    ``LocalCluster`` of ``workers`` processes (default one per core) with one thread each
    and ``memory_limit`` per worker (Dask's default: the machine's memory shared out).
    ``progress``: ``None`` or a factory ``total -> Progress``.
    """
    table = grid.table(out)
    check_writable(table.csv_path, flag="--out")
    with table.lock(), contextlib.ExitStack() as stack:
        meta = table.claim(grid.identity())
        rows = {row["point"]: row for row in table.read_rows()}
        stored_before = sum(row.get("status") == "done" for row in rows.values())
        todo = [p for p in grid.points if rows.get(p.id, {}).get("status") != "done"]
        if todo and client is None:  # connect first: a cluster that cannot be reached writes nothing
            client = _connect(stack, workers=workers, scheduler=scheduler, memory_limit=memory_limit)
        session = {"started": _now(), "finished": None, "computed": 0, "host": platform.node(),
                   "provenance": provenance()}
        meta = {
            "identity": grid.identity(),
            "hash": config_hash(grid.identity()),
            "task": "grid",
            "grid_file": str(grid.path),
            "grid": {k: [_text(v) for v in vals] for k, vals in zip(grid.keys, grid.values)},
            "points": [{"point": p.id, "values": {k: _text(v) for k, v in p.values.items()},
                        "config": p.config.to_dict() if p.config else None, "error": p.error} for p in grid.points],
            "columns": list(grid.columns),
            "sessions": [*meta.get("sessions", []), session],
            "complete": False,
        }
        table.write_meta(meta)
        outcome = GridOutcome(grid=grid, table=table, stored_before=stored_before)

        def store(point: GridPoint, result: dict) -> None:
            row = {"point": point.id, **{k: _text(v) for k, v in point.values.items()}, **result}
            rows[point.id] = row
            table.write_rows([rows[p.id] for p in grid.points if p.id in rows])
            outcome.computed.append(point.id)

        bar = progress(len(todo)) if (progress is not None and todo) else None
        try:
            if todo:
                outcome.scheduler = _run_on_dask(todo, store, bar, client)
        finally:
            if bar is not None:
                bar.close()
            session["finished"] = _now()
            session["computed"] = len(outcome.computed)
            session["scheduler"] = outcome.scheduler
            meta["complete"] = all(rows.get(p.id, {}).get("status") == "done" for p in grid.points)
            table.write_meta(meta)
        outcome.rows = [rows[p.id] for p in grid.points if p.id in rows]
    return outcome


def _connect(stack, *, workers, scheduler, memory_limit):
    """A Dask client of the cluster at ``scheduler``, or of a new ``LocalCluster``; both
    closed when ``stack`` closes."""
    import os

    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return stack.enter_context(Client(scheduler, timeout="10s"))
        except (OSError, TimeoutError, ValueError) as err:
            raise ConfigError(f"--scheduler {scheduler!r}: cannot connect ({_one_line(err)})") from None
    cluster = stack.enter_context(LocalCluster(
        n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True, dashboard_address=None,
        memory_limit="auto" if memory_limit is None else memory_limit))
    return stack.enter_context(Client(cluster))


def _run_on_dask(todo, store, bar, client) -> str:
    from distributed import as_completed

    limit = _worker_memory_limit(client)
    futures = {}
    for point in todo:
        if point.config is None:
            store(point, {"status": "failed", "error": point.error, "worker": ""})
            _report(bar, point, "failed")
            continue
        config, reason = plan_point(point.config, _dataset_shape(point.config), limit)
        if config is None:
            store(point, {"status": "skipped", "error": reason, "worker": ""})
            _report(bar, point, "skipped")
            continue
        future = client.submit(run_point, config, limit, key=f"hessrank-grid-{point.id}", pure=False)
        futures[future] = point
    for future in as_completed(list(futures)):
        point = futures[future]
        try:
            result = future.result()
        except Exception as err:  # noqa: BLE001 - e.g. KilledWorker after repeated worker deaths
            result = {"status": "failed", "error": _one_line(err), "worker": ""}
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
        msg = ", ".join(f"{name} {result['rank_' + s]}/{result['pred_' + s]}"
                        for name, s in (("H_L", "L"), ("H_o", "o"), ("H_F", "F"))) + " (measured/predicted)"
    else:
        msg = f"{status}: {(result or {}).get('error', '') or point.error or ''}".rstrip(": ")
    bar.end(point.label(), msg)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def summarize(outcome: GridOutcome) -> dict:
    """Counts: points done / failed / skipped, and how many finished points equal their
    prediction, split by kind (``exact`` for linear networks without bias)."""
    rows = outcome.rows
    done = [r for r in rows if r["status"] == "done"]
    counts = {s: sum(r["status"] == s for r in rows) for s in STATUS}
    counts["points"] = len(outcome.grid.points)
    for kind in ("exact", "estimate"):
        mine = [r for r in done if r["kind"] == kind]
        counts[f"{kind}_points"] = len(mine)
        counts[f"{kind}_equal"] = sum(row_matches_prediction(r) for r in mine)
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
        f"exact (linear, no bias): {c['exact_equal']} of {c['exact_points']} points equal their prediction",
        f"estimate (other networks): {c['estimate_equal']} of {c['estimate_points']} points equal the linear formula",
    ]
    for row in outcome.rows:
        if row["status"] != "done":
            point = next(p for p in outcome.grid.points if p.id == row["point"])
            lines.append(f"{row['status']}: {point.label()}: {row['error']}")
    lines += [f"rows:   {outcome.table.csv_path}", f"config: {outcome.table.json_path}"]
    if outcome.scheduler:
        lines.append(f"dask:   {outcome.scheduler}")
    return "\n".join(lines)


def grid_figure(rows, grid: Grid, *, facet: str | None = None):
    """Measured against predicted rank, one panel per matrix (columns) and per value of
    ``facet`` (rows; default the first grid option with several values). Points on the
    diagonal equal their prediction; filled markers are exact predictions, hollow ones
    the linear formula as an estimate."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .plotting import _RC, _TEX, COLOURS, DPI

    done = rows[rows["status"] == "done"]
    if facet is None:
        facet = next((k for k, vals in zip(grid.keys, grid.values) if len(vals) > 1), None)
    if facet is not None and facet not in grid.keys:
        raise ConfigError(f"--facet {facet!r}: not a grid option; use one of {', '.join(grid.keys)}")
    levels = [_text(v) for v in grid.values[grid.keys.index(facet)]] if facet else [None]
    names = ("H_L", "H_o", "H_F")
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(3.0 * len(names) + 0.6, 2.6 * len(levels) + 0.8), dpi=DPI)
        FigureCanvasAgg(fig)
        axes = fig.subplots(len(levels), len(names), squeeze=False)
        for i, level in enumerate(levels):
            part = done if level is None else done[done[facet].astype(str) == level]
            for j, name in enumerate(names):
                ax = axes[i][j]
                s = name[-1]
                pred = part[f"pred_{s}"].astype(float).to_numpy()
                meas = part[f"rank_{s}"].astype(float).to_numpy()
                exact = (part["kind"] == "exact").to_numpy()
                top = max([1.0, *pred, *meas]) * 1.05
                ax.plot([0, top], [0, top], color="grey", lw=0.8, ls="--", label="measured = predicted")
                ax.plot(pred[exact], meas[exact], ls="none", marker="o", ms=5, color=COLOURS[name],
                        label="exact prediction")
                ax.plot(pred[~exact], meas[~exact], ls="none", marker="o", ms=5, mfc="none", color=COLOURS[name],
                        label="linear formula (estimate)")
                ax.set_xlim(0, top)
                ax.set_ylim(0, top)
                title = f"rank {_TEX[name]}" + (f" — {facet} = {level}" if level is not None else "")
                ax.set_title(title, fontsize=8.5)
                ax.set_xlabel("predicted")
                ax.set_ylabel("measured")
                if i == 0 and j == 0:
                    ax.legend(fontsize=7, loc="upper left")
        fig.suptitle(f"grid {grid.name}: {len(done)} of {len(grid.points)} points done", fontsize=9)
        fig.tight_layout()
    return fig


def plot_grid(grid: Grid, *, out="results", facet: str | None = None) -> list[Path]:
    """Draw the stored rows of ``grid`` (:func:`grid_figure`) as PNG and PDF beside its CSV."""
    import pandas as pd

    from .plotting import save_figure

    table = grid.table(out)
    if not table.exists():
        raise ConfigError(f"--grid {str(grid.path)!r}: nothing stored yet at {str(table.csv_path)!r}; "
                          "run hessian-rank grid first")
    rows = pd.read_csv(table.csv_path, keep_default_na=False, dtype=str)
    fig = grid_figure(rows, grid, facet=facet)
    return save_figure(fig, table.csv_path.with_name(table.stem + "_grid"))


__all__ = ["Grid", "GridPoint", "GridOutcome", "load_grid", "run_grid", "run_point", "plan_point", "summarize",
           "format_grid_summary", "grid_figure", "plot_grid"]
