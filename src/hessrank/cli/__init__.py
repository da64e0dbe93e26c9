"""The ``hessian-rank`` command line (the only layer that knows about flags)."""

from .format import format_rank_vs_rtol, format_result
from .main import build_parser, entry, error_line, flag_of, main, script_main

__all__ = ["main", "entry", "script_main", "build_parser", "error_line", "flag_of", "format_result",
           "format_rank_vs_rtol"]
