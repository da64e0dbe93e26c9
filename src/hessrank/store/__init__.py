"""The result store: ``<out>/store/<task>/<loss>/<dataset>/…``, one CSV table of rows per
result with a JSON of what produced it, written atomically under a lock.

Internal: the stable API is ``hessrank.*``; names here may change between versions.
"""

from .blocks import BLOCK_COLUMNS, BlockTable
from .identity import IDENTITY_EXCLUDED, config_hash, config_identity, config_slug, store_folder
from .rows import (
                     RESULT_COLUMNS,
                     comparison_lines,
                     count_comparisons,
                     encode_kinds,
                     format_float,
                     result_row,
                     row_comparisons,
                     row_kinds,
                     row_mark,
                     write_spectrum_csv,
)
from .session import stored_run, stored_session
from .tables import (
                     ResultTable,
                     StoredOutcome,
                     find_results,
                     spectra_table,
                     spectrum_table,
                     store_spectra,
                     store_spectrum,
)

__all__ = [
    "BLOCK_COLUMNS", "BlockTable", "IDENTITY_EXCLUDED", "config_hash", "config_identity", "config_slug",
    "store_folder", "RESULT_COLUMNS", "format_float", "result_row", "write_spectrum_csv", "encode_kinds",
    "row_kinds", "comparison_lines", "row_comparisons", "count_comparisons", "row_mark", "stored_session",
    "stored_run", "ResultTable", "StoredOutcome", "find_results", "spectrum_table", "store_spectrum", "spectra_table",
    "store_spectra",
]
