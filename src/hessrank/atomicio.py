"""Files written whole or not at all: a temporary file in the same folder, then a rename.

Shared by the data layer (downloads, unpacked archives) and the result store.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import StoreError


@contextlib.contextmanager
def atomic_output(path, mode: str = "w"):
    """Open a temporary file next to ``path``; on success fsync it and rename it to ``path``.

    If the block raises, the temporary file is removed and ``path`` is left as it was.
    The file gets the mode ``open()`` would give it (``mkstemp`` alone makes it 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fchmod(fh.fileno(), _new_file_mode())  # results are for sharing, not 0600
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _new_file_mode() -> int:
    """The mode ``open()`` would give a new file: 0666 less the process umask."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    with atomic_output(path, "w") as fh:
        fh.write(text)


def check_writable(path, *, param: str) -> None:
    """Refuse early (before any computation) a path whose folder cannot be written;
    the error names ``param``, the argument that gave the path."""
    parent = Path(path).resolve().parent
    if Path(path).is_dir():
        raise StoreError.invalid(param, str(path), "is a folder; give a file name")
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        raise StoreError.invalid(param, str(path), f"folder {str(probe)!r} is not writable")
