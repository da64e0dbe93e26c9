"""What produced a number: package versions, machine, peak memory."""

from __future__ import annotations

import os
import platform
import resource

import numpy as np

from .._version import __version__


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def provenance() -> dict:
    """Package versions and machine, so that every number can be traced and recomputed."""
    import jax
    import scipy

    return {
        "hessrank": __version__,
        "jax": jax.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "system": platform.system(),
        "cpu_count": os.cpu_count(),
    }
