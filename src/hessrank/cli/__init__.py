"""The ``hessian-rank`` command line (the only layer that knows about flags).

Importing it loads no JAX: the formatting of results (:func:`format_result`,
:func:`format_rank_vs_rtol`) is imported on first use.
"""

from .main import build_parser, entry, main, script_main
from .options import error_line, flag_of

__all__ = ["main", "entry", "script_main", "build_parser", "error_line", "flag_of", "format_result",
           "format_rank_vs_rtol"]

_FORMAT = ("format_result", "format_rank_vs_rtol")


def __getattr__(name):
    if name in _FORMAT:
        from . import format

        return getattr(format, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
