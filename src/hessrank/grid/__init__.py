"""Grids of runs: a TOML file of option lists (:mod:`.spec`) run on Dask (:mod:`.run`).

Internal: the stable API is ``hessrank.*``; names here may change between versions."""

from .run import GridOutcome, format_grid_summary, run_grid, run_point, summarize
from .spec import Grid, load_grid, plan_point, text_value

__all__ = [
    "Grid", "GridOutcome", "load_grid", "run_grid", "run_point", "plan_point", "summarize",
    "format_grid_summary", "text_value",
]
