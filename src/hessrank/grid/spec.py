"""Grids of runs on a Dask cluster: the Cartesian product of lists of ``run`` options.

A grid file is TOML with one table::

    [grid]
    dataset = ["gaussian", "digits"]
    loss = ["mse", "cross"]
    units = ["10,10", "5,5,5"]
    seed = [1, 2]

Every key is an option of ``hessian-rank run`` (``batch_size`` or ``batch-size``); a
value is a list, or one value. The points are the Cartesian product, in file order;
options not in the file keep their ``run`` defaults. ``blocks = "layers"`` (or
``"leaves"``, or a list of both) also ranks each point's diagonal blocks of H_L, H_o,
H_F; they land in the side table ``grid_<hash>_blocks.csv`` (:class:`~hessrank.store.BlockTable`),
one row per (point, block), the main table keeping its columns.

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

import datetime
import itertools
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..atomicio import read_regular_bytes
from ..config import RunConfig, config_from_options, is_safe_name, run_option_defaults
from ..errors import ConfigError
from ..matrices import DENSE, MATRIX_FREE
from ..measure import memory_limit, plan_method
from ..measure.blocks import BLOCK_KINDS
from ..measure.network import network_num_params
from ..store import RESULT_COLUMNS, ResultTable, config_hash, config_identity


def text_value(value) -> str:
    """A grid value as CSV text: ``10,10`` for a list, ``true``/``false`` for a boolean."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


@dataclass(frozen=True)
class GridPoint:
    """One point: its grid ``values``, its configuration (or the ``error`` that made it
    invalid), the ``blocks`` whose ranks it stores (``None``: none) and ``id``, a hash of
    everything that defines it."""

    values: dict
    config: RunConfig | None
    error: str | None
    id: str
    varying: tuple[str, ...] = ()
    blocks: str | None = None

    def label(self) -> str:
        """The options that vary across the grid, e.g. ``loss=cross, seed=2``."""
        keys = self.varying or tuple(self.values)
        return ", ".join(f"{k}={text_value(self.values[k])}" for k in keys)


@dataclass(frozen=True)
class Grid:
    """A grid read from ``path``: its ``keys`` with their ``values``, and the ``points``."""

    path: Path
    keys: tuple[str, ...]
    values: tuple[tuple, ...]
    points: tuple[GridPoint, ...]

    @property
    def name(self) -> str:
        """The grid file's name without its suffix."""
        return self.path.stem

    @property
    def columns(self) -> tuple[str, ...]:
        """The stored table's columns: point id, grid options, results, status."""
        return ("point", *self.keys, *RESULT_COLUMNS, "status", "worker", "error")

    @property
    def blocks(self) -> bool:
        """Whether some point stores its per-block ranks (in the side table of :meth:`table`)."""
        return any(p.blocks is not None for p in self.points)

    def identity(self) -> dict:
        """What defines the stored grid: the ids of its points."""
        return {"task": "grid", "points": [p.id for p in self.points]}

    def table(self, out) -> ResultTable:
        """``<out>/store/grid/<grid name>/grid_<hash>.csv`` (+ ``.json``, ``.lock``)."""
        folder = Path(out, "store", "grid", self.name)
        return ResultTable(folder, f"grid_{config_hash(self.identity())}", self.columns)


#: grid keys that are options of ``hessian-rank run`` but not of its configuration
#: (:class:`~hessrank.config.RunConfig`): what a run measures besides, not what it measures
GRID_EXTRA_OPTIONS = {"blocks": None}


#: the most points one grid file may have (each is at least one Hessian; loading checks each)
MAX_GRID_POINTS = 20_000


def load_grid(path) -> Grid:
    """Read a grid file; refuse (ConfigError, one line) a malformed file, an unknown
    option, or a value that is invalid at every point it appears in."""
    path = Path(path)
    where = f"grid file {str(path)!r}"
    name = path.stem
    if not is_safe_name(name):
        raise ConfigError(f"{where}: the grid's name {name!r} (the file name without its suffix) cannot name a "
                          "folder of store/grid/: only letters, digits, '.', '_' and '-'; rename the file, "
                          "e.g. mygrid.toml")
    try:
        spec = tomllib.loads(read_regular_bytes(path).decode("utf-8"))   # a FIFO is refused, not waited on
    except UnicodeDecodeError as err:
        raise ConfigError(f"{where}: not UTF-8 text (byte {err.start}); save it as UTF-8") from None
    except OSError as err:
        raise ConfigError(f"{where}: cannot be read ({err.strerror or err})") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{where}: not valid TOML ({err})") from None
    table = spec.get("grid")
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"{where}: needs a [grid] table of option = [values], e.g. loss = [\"mse\", \"cross\"]")
    defaults = {**run_option_defaults(), **GRID_EXTRA_OPTIONS}
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
            if key == "blocks" and v not in BLOCK_KINDS:  # refused here: a worker would fail every point
                raise ConfigError(f"{where}: [grid] {raw_key} = {v!r}: not one of {', '.join(BLOCK_KINDS)} (the "
                                  "diagonal blocks to rank: one per parameter array or per layer)")
        keys.append(key)
        values.append(tuple(vals))
    count = math.prod(len(vals) for vals in values)
    if count > MAX_GRID_POINTS:  # counted before the product is expanded
        raise ConfigError(f"{where}: {count} points; a grid has at most {MAX_GRID_POINTS}: split it into "
                          "several grid files")
    varying = tuple(k for k, vals in zip(keys, values) if len(vals) > 1)
    points = tuple(_make_point(dict(zip(keys, combo)), defaults, varying) for combo in itertools.product(*values))
    _refuse_values_that_never_work(where, keys, values, points)
    return Grid(path=path, keys=tuple(keys), values=tuple(values), points=points)


def _make_point(values: dict, defaults: dict, varying: tuple) -> GridPoint:
    fields = {k: v for k, v in defaults.items() if k not in GRID_EXTRA_OPTIONS}
    for key, value in values.items():
        if key not in GRID_EXTRA_OPTIONS:
            fields[key] = text_value(value) if key == "units" else value
    blocks = values.get("blocks")
    try:
        config = config_from_options(fields)
    except ConfigError as err:
        ident = {"task": "grid-point", "invalid": {k: text_value(v) for k, v in values.items()}}
        return GridPoint(values, None, str(err), config_hash(ident), varying, blocks)
    # blocks enter the identity only when asked for: the ids of a grid without them stay as they were
    extra = {"blocks": blocks} if blocks is not None else {}
    return GridPoint(values, config, None, config_hash(config_identity(config, task="grid-point", **extra)),
                     varying, blocks)


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
    The rule is :func:`hessrank.measure.plan_method` within the worker's limit, with a
    point whose dense matrices do not fit run matrix-free, and one that fits neither
    way skipped with the estimates. On the worker, ``run`` plans within the same limit."""
    n, d = shape
    p = network_num_params(config, d, config.K)
    if p is None:  # a user's model: only its build knows p; the worker's run plans it within the limit
        return config, None
    with memory_limit(worker_limit):
        try:
            plan = plan_method(config.method, p, n, config.K, fall_back=True)
        except ConfigError as err:
            limit = "no limit" if not worker_limit else f"{worker_limit / 2**30:.2f} GiB"
            return None, f"{err.detail} (a worker's memory limit: {limit}); give the workers more memory (memory_limit)"
    return (config if plan.method == DENSE else config.replace(method=MATRIX_FREE)), None
