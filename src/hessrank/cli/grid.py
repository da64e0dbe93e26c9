"""``hessian-rank grid GRID.toml``: a grid of configurations on a Dask cluster."""

from __future__ import annotations

import argparse

from ..errors import ConfigError
from .options import add_cache_option, add_execution_options, check_threads_and_devices, refuse_processes

HELP = "run a grid of configurations (GRID.toml) on a Dask cluster"
DESCRIPTION = (
    "Run the Cartesian product of the option lists in GRID.toml's [grid] table (any option of "
    "`hessian-rank run`, e.g. loss = [\"mse\", \"cross\"], units = [\"10,10\", \"5\"]) on Dask: a local cluster "
    "of worker processes, or an existing cluster given by --scheduler. Rows land in "
    "<out>/store/grid/<GRID>/; a rerun computes only the points without a finished row."
)


def add_options(parser: argparse.ArgumentParser) -> None:
    """Options of ``hessian-rank grid``."""
    parser.add_argument("grid", metavar="GRID.toml", help="grid file with a [grid] table")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes of the local cluster (default: one per core)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT", default=None,
                        help="use the existing Dask cluster of this scheduler instead of a local one")
    parser.add_argument("--memory-limit", "--memory_limit", dest="memory_limit", default=None,
                        help="memory limit per local worker, e.g. 4GB (default: the machine's memory shared out)")
    parser.add_argument("--out", default="results", help="root of the result store (default results)")
    add_cache_option(parser)
    add_execution_options(parser, processes=False)
    parser.set_defaults(handler=_cmd_grid)


def _cmd_grid(args) -> int:
    from ..compile_cache import default_cache_dir
    from ..grid import format_grid_summary, load_grid, run_grid
    from .progress import Progress

    if args.workers is not None and args.workers < 1:
        raise ConfigError.invalid("workers", args.workers, "need at least 1 worker process")
    if args.workers is not None and args.scheduler:
        raise ConfigError("--workers with --scheduler: the existing cluster has its own workers; give one of them")
    if args.scheduler and "://" not in args.scheduler:
        raise ConfigError.invalid("scheduler", args.scheduler, "give the scheduler address, e.g. tcp://10.0.0.5:8786")
    if args.memory_limit is not None:
        if args.scheduler:
            raise ConfigError("--memory-limit with --scheduler: the existing cluster's workers have their own limits")
        try:
            from dask.utils import parse_bytes  # dask is loaded only for grids

            if parse_bytes(args.memory_limit) <= 0:
                raise ValueError
        except ValueError:
            raise ConfigError.invalid("memory_limit", args.memory_limit, "give a size such as 4GB or 500MiB") from None
    refuse_processes(args, "a grid runs its points on Dask workers, not as joined processes; leave it out (give "
                           "--scheduler for a cluster)")
    if args.scheduler is None:   # the local workers see this process's devices
        check_threads_and_devices(args)
    grid = load_grid(args.grid)
    cache = default_cache_dir(args.compile_cache)
    outcome = run_grid(grid, out=args.out, workers=args.workers, scheduler=args.scheduler,
                       memory_limit=args.memory_limit, compile_cache=None if cache is None else str(cache),
                       progress=lambda total: Progress(total, desc=f"grid {grid.name}"), threads=args.threads,
                       devices=args.devices)
    print(format_grid_summary(outcome))
    return 0
