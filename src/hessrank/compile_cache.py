"""JAX's persistent compilation cache, so that repeated shapes are compiled once.

A sweep or grid point, or a repeated ``hessian-rank run`` with the same shapes, would
otherwise compile the same Hessian programs again in every process. The command line
turns the cache on by default (``--no-compile-cache`` or ``HESSRANK_COMPILE_CACHE=off``
turn it off; ``HESSRANK_COMPILE_CACHE=DIR`` moves it); library users call
:func:`enable_compile_cache` themselves — importing hessrank changes no JAX setting.
"""

from __future__ import annotations

import os
from pathlib import Path

#: the environment variable that moves the cache (a folder) or turns it off (``off``)
ENV_CACHE = "HESSRANK_COMPILE_CACHE"
_OFF = ("off", "0", "no", "false", "")


def default_cache_dir() -> Path | None:
    """``$HESSRANK_COMPILE_CACHE``, else ``${XDG_CACHE_HOME:-~/.cache}/hessrank/jax``; ``None`` when turned off."""
    value = os.environ.get(ENV_CACHE)
    if value is not None:
        return None if value.strip().lower() in _OFF else Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "hessrank" / "jax"


def enable_compile_cache(path=None) -> Path | None:
    """Store compiled JAX programs under ``path`` (default :func:`default_cache_dir`) and
    reuse them in later processes; return the folder, or ``None`` if it is off or cannot
    be created (the cache is a speed-up, never a reason to fail)."""
    folder = default_cache_dir() if path is None else Path(path).expanduser()
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(folder, os.W_OK):
        return None
    import jax

    jax.config.update("jax_compilation_cache_dir", str(folder))
    # every program: the Hessian programs of small networks compile in well under a second,
    # and those are the ones a sweep repeats most
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return folder
