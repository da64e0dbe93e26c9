"""JAX's persistent compilation cache, so that repeated shapes are compiled once.

A sweep or grid point, or a repeated ``hessian-rank run`` with the same shapes, would
otherwise compile the same Hessian programs again in every process. The command line
keeps compiled programs under ``${XDG_CACHE_HOME:-~/.cache}/hessrank/jax`` by default;
``HESSRANK_COMPILE_CACHE=DIR`` names another folder, ``--no-compile-cache`` or
``HESSRANK_COMPILE_CACHE=off`` turn it off. The folder is size-capped
(:data:`CACHE_MAX_BYTES`, least recently used programs evicted first), and that cap is
also what makes JAX read and write entries under a file lock: processes sharing the
folder (sweeps, grid workers, parallel runs) never read an entry another is still
writing. Library users call :func:`enable_compile_cache` themselves — importing hessrank
changes no JAX setting.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

#: the environment variable that turns the cache on (``on`` or a folder) or off (``off``)
ENV_CACHE = "HESSRANK_COMPILE_CACHE"
_OFF = ("off", "0", "no", "false")
_ON = ("on", "1", "yes", "true")
#: the cache folder's size cap (JAX evicts the least recently used programs above it; with a
#: cap JAX also locks the folder while it reads or writes an entry)
CACHE_MAX_BYTES = 2 * 1024**3


def default_cache_dir(requested: bool | None = None) -> Path | None:
    """The cache folder, or ``None`` when the cache is off. ``requested``: the command
    line's ``--compile-cache`` (True) / ``--no-compile-cache`` (False) / neither (None);
    when neither is given the cache is on unless ``$HESSRANK_COMPILE_CACHE`` says ``off``.
    ``$HESSRANK_COMPILE_CACHE`` may name the folder (default
    ``${XDG_CACHE_HOME:-~/.cache}/hessrank/jax``)."""
    value = os.environ.get(ENV_CACHE, "").strip()
    if requested is False or (requested is None and value.lower() in _OFF):
        return None
    if value and value.lower() not in _OFF + _ON:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "hessrank" / "jax"


def enable_compile_cache(path=None) -> Path | None:
    """Store compiled JAX programs under ``path`` (default: the folder of
    :func:`default_cache_dir`, even when the environment leaves it off) and reuse them in
    later processes; return the folder, or ``None`` if it cannot be created (the cache is
    a speed-up, never a reason to fail)."""
    folder = default_cache_dir(True) if path is None else Path(path).expanduser()
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
    # a cap turns on JAX's eviction, and with it the file lock around every read and write
    # (JAX needs the filelock package for that, a dependency of hessrank)
    if importlib.util.find_spec("filelock") is not None:
        jax.config.update("jax_compilation_cache_max_size", CACHE_MAX_BYTES)
    return folder
