"""Files written whole or not at all: a temporary file in the same folder, then a rename.

Shared by the data layer (downloads, unpacked archives) and the result store.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

from .errors import StoreError


@contextlib.contextmanager
def atomic_output(path, mode: str = "w"):
    """Open a temporary file next to ``path``; on success fsync it and rename it to ``path``.

    If the block raises, the temporary file is removed and ``path`` is left as it was.
    The file gets the mode ``open()`` would give it (``mkstemp`` alone makes it 0600).
    ``path`` must be a regular file or not exist: a device, a pipe or a folder is never
    replaced. Failures of this function's own steps (folder, temporary file, flush,
    rename) raise :class:`StoreError` naming ``path``; errors of the block pass through.
    """
    path = Path(path)
    _refuse_non_regular(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise _write_error(path, err) from None
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            try:
                fh.flush()
                os.fchmod(fh.fileno(), _new_file_mode())  # results are for sharing, not 0600
                os.fsync(fh.fileno())
            except OSError as err:
                raise _write_error(path, err) from None
        _refuse_non_regular(path)  # it may have appeared meanwhile
        try:
            os.replace(tmp, path)
        except OSError as err:
            raise _write_error(path, err) from None
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _write_error(path: Path, err: OSError) -> StoreError:
    return StoreError(f"cannot write {str(path)!r}: {err.strerror or err}; nothing was written there")


def _refuse_non_regular(path: Path) -> None:
    """Refuse to replace anything at ``path`` but a regular file (or a link to one)."""
    reason = _not_a_file_reason(path)
    if reason is not None:
        raise StoreError(f"cannot write {str(path)!r}: {reason}")


def _not_a_file_reason(path: Path) -> str | None:
    """Why ``path`` cannot be replaced by a file, or ``None`` (a regular file, or nothing there)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        # a dangling link: writing would replace the link, not make its target
        return "is a link to a missing file" if os.path.islink(path) else None
    except OSError as err:  # e.g. a symlink loop (ELOOP), a parent that is a file (ENOTDIR)
        return f"cannot be used ({err.strerror or err})"
    if stat.S_ISDIR(mode):
        return "is a folder; give a file name"
    if not stat.S_ISREG(mode):
        return "is not a regular file (a device, pipe or socket); give a file name"
    return None


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
        try:
            fh.write(text)
        except OSError as err:
            raise _write_error(Path(path), err) from None


def read_regular_bytes(path) -> bytes:
    """The bytes of the regular file ``path``. Opened without blocking and checked before
    reading: a pipe (FIFO), a device or a socket where a file is expected raises
    :class:`OSError` (``EINVAL``, "not a regular file") instead of waiting forever for a writer."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a pipe, device or socket)", str(path))
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read()
    finally:
        os.close(fd)


def check_real_folders(folder, *, root, param: str = "out") -> None:
    """Refuse (StoreError naming ``param``) a ``folder`` below ``root`` that leads through a
    link or a non-folder: the tool writes only into real folders inside its output, never
    through a link someone placed there. Components that do not exist yet are fine."""
    folder, root = Path(folder), Path(root)
    try:
        parts = folder.relative_to(root).parts
    except ValueError:
        raise StoreError.about(param, f"{str(folder)!r} is not inside {str(root)!r}") from None
    probe = root
    for part in parts:
        if part in ("", ".", ".."):
            raise StoreError.about(param, f"{str(folder)!r} climbs out of {str(root)!r}")
        probe = probe / part
        try:
            mode = os.lstat(probe).st_mode
        except FileNotFoundError:
            return
        except OSError as err:
            raise StoreError.about(param, f"cannot use {str(probe)!r} ({err.strerror or err})") from None
        if stat.S_ISLNK(mode):
            raise StoreError.about(param, f"{str(probe)!r} is a link; results are written only into real "
                                          "folders inside the output: remove the link")
        if not stat.S_ISDIR(mode):
            raise StoreError.about(param, f"{str(probe)!r} is not a folder; move it away")


def check_writable(path, *, param: str) -> None:
    """Refuse early (before any computation) a path that could not be written: ``path``
    itself a folder, device, pipe, link loop or dangling link; a folder on the way that
    is a file; the nearest existing folder not writable. The error names ``param``, the
    argument that gave the path."""
    path = Path(path)
    reason = _not_a_file_reason(path)
    if reason is not None:
        raise StoreError.invalid(param, str(path), reason)
    probe = Path(os.path.abspath(path)).parent
    while True:
        try:
            st = os.stat(probe)
            break
        except FileNotFoundError:
            probe = probe.parent
        except OSError as err:
            raise StoreError.invalid(param, str(path), f"cannot use {str(probe)!r} ({err.strerror})") from None
    if not stat.S_ISDIR(st.st_mode):
        raise StoreError.invalid(param, str(path), f"{str(probe)!r} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise StoreError.invalid(param, str(path), f"folder {str(probe)!r} is not writable")
