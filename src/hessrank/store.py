"""Writing results: atomic files (temporary file + rename), never half-written."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


from .config import ConfigError


@contextlib.contextmanager
def atomic_output(path, mode: str = "w"):
    """Open a temporary file next to ``path``; on success fsync it and rename it to ``path``.

    If the block raises, the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    with atomic_output(path, "w") as fh:
        fh.write(text)


def check_writable(path, *, flag: str) -> None:
    """Refuse early (before any computation) a path whose folder cannot be written."""
    parent = Path(path).resolve().parent
    if Path(path).is_dir():
        raise ConfigError(f"{flag} {str(path)!r}: is a folder; give a file name")
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        raise ConfigError(f"{flag} {str(path)!r}: folder {str(probe)!r} is not writable")


def spectrum_csv(result) -> str:
    """CSV text: one row per index, eigenvalues of H_L, H_o, H_F by decreasing magnitude."""
    names = ("H_L", "H_o", "H_F")
    cols = [result.ranks[k].eigenvalues for k in names]
    size = max(c.size for c in cols)
    lines = ["index,H_L,H_o,H_F"]
    for i in range(size):
        vals = [repr(float(c[i])) if i < c.size else "0.0" for c in cols]
        lines.append(f"{i + 1}," + ",".join(vals))
    lines.append("")
    return "\n".join(lines)


def write_spectrum_csv(path, result) -> None:
    """Write the spectra of one result (see :func:`spectrum_csv`) atomically."""
    atomic_write_text(path, spectrum_csv(result))


__all__ = ["atomic_output", "atomic_write_text", "check_writable", "spectrum_csv", "write_spectrum_csv"]
