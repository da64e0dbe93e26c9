"""The text the command line prints: the library's tables (:mod:`hessrank.measure.report`),
which each result's ``summary()`` returns too, so that the command line and the library
print the same text.

The tables are loaded on first use (PEP 562): importing the command line stays cheap
until a command runs."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__all__ = ["format_result", "format_explain", "format_blocks", "format_rank_vs_rtol", "format_spectrum",
           "format_block_spectra", "format_model_result", "duration_text"]


def __getattr__(name: str):
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module("..measure.report", __package__), name)


if TYPE_CHECKING:
    from ..measure.report import (
        duration_text,
        format_block_spectra,
        format_blocks,
        format_explain,
        format_model_result,
        format_rank_vs_rtol,
        format_result,
        format_spectrum,
    )
