"""The result store's tables: one CSV of rows, a JSON of what produced them, a lock.

The result store (sweeps, grids, spectra) lives under ``<out>/store/<task>/<loss>/<dataset>/…``
(see :func:`store_folder`). Each result is a :class:`ResultTable`: one tidy CSV, one row
per point, a JSON beside it with the full configuration and provenance, and a lock
file. Files are named ``<slug>_<hash>`` where the hash covers every setting that can
change a number (:func:`config_hash`), so a different configuration never mixes into
another's file. Every write replaces the whole file atomically, so a process killed
at any moment (SIGKILL included) leaves the last complete version behind.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import io
import json
import os
import signal
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..atomicio import atomic_write_text, read_regular_bytes
from ..errors import StoreError
from .identity import architecture_name, config_hash, config_identity, config_slug, store_folder
from .rows import row_problem, spectrum_csv


@dataclass(kw_only=True)
class StoredOutcome:
    """What a sweep or grid left in the store: its table, every stored row, the points
    computed by this call and how many were stored before it."""

    table: ResultTable
    rows: list[dict[str, str]] = field(default_factory=list)
    computed: list = field(default_factory=list)
    stored_before: int = 0
    #: damaged stored lines set aside (one line each: file, line, reason), to be recomputed
    set_aside: list[str] = field(default_factory=list)


class ResultTable:
    """One stored result: ``<folder>/<stem>.csv`` (rows), ``<stem>.json`` (what produced
    them) and ``<stem>.lock``.

    Writers hold :meth:`lock` for their whole session; :meth:`write_rows` and
    :meth:`write_meta` replace the file atomically, so readers and a later resume see
    either the previous or the new complete file, never a part.
    """

    def __init__(self, folder, stem: str, columns, *, floats=(), ints=()):
        self.folder = Path(folder)
        #: this table's own numeric columns, checked on reading beside the shared ones
        self.floats, self.ints = frozenset(floats), frozenset(ints)
        self.stem = stem
        self.columns = tuple(columns)
        self.csv_path = self.folder / f"{stem}.csv"
        self.json_path = self.folder / f"{stem}.json"
        self.lock_path = self.folder / f"{stem}.lock"
        #: ``(line, reason, text)`` of the damaged lines the last :meth:`read_rows` left out
        self.rejected: list[tuple[int, str, str]] = []

    @contextlib.contextmanager
    def lock(self):
        """Hold an exclusive lock on this result; refuse (StoreError) if another process
        holds it. The OS releases it when the holder dies, even by SIGKILL."""
        fd = self._acquire()
        with _signals_as_interrupt():
            try:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self._remove_stale_temporaries()
                yield self
            finally:
                # removed while still held: a process that opened the old file finds it gone and retries
                with contextlib.suppress(OSError):
                    os.unlink(self.lock_path)
                os.close(fd)  # closing the descriptor releases the lock

    def _acquire(self) -> int:
        """A descriptor of the lock file, locked; the lock file is the one at :attr:`lock_path` now."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError.about("out", f"cannot make the folder {str(self.folder)!r} "
                                          f"({err.strerror or err}); give another --out") from None
        for _ in range(100):
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    os.close(fd)
                    raise OSError(errno.EINVAL, "not a regular file (a pipe, device or socket)")
            except OSError as err:  # a folder, a link, a device, a pipe where the lock belongs
                raise StoreError.about("out", f"cannot use the lock file {str(self.lock_path)!r} "
                                              f"({err.strerror or err}); move it away") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise StoreError.about("out", f"another process is writing {str(self.csv_path)!r} (lock "
                                              f"{self.lock_path.name} is held); "
                    "wait for it to finish or give another --out"
                ) from None
            try:
                same = os.stat(self.lock_path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return fd
            os.close(fd)  # its holder removed it after we opened it: take the new one
        raise StoreError.about("out", f"cannot take the lock {str(self.lock_path)!r}; try again")

    def _remove_stale_temporaries(self) -> None:
        # left by a writer killed between creating its temporary file and the rename
        for path in (self.csv_path, self.json_path):
            for tmp in self.folder.glob(f".{path.name}.*.tmp"):
                tmp.unlink(missing_ok=True)

    def exists(self) -> bool:
        """Whether the CSV exists."""
        return self.csv_path.exists()

    def read_rows(self, *, strict: bool = True) -> list[dict[str, str]]:
        """The stored rows as text, exactly as written; ``[]`` if there is no file yet.

        Every row is checked (:func:`~hessrank.store.rows.row_problem`; a NUL byte, bytes
        that are not UTF-8, a line cut short, a key seen before). ``strict``: the first
        damaged line is refused (:class:`StoreError` naming the file and line); otherwise
        damaged lines are left out and listed in :attr:`rejected` as ``(line, reason, text)``.
        """
        self.rejected = []
        try:
            data = read_regular_bytes(self.csv_path)
        except FileNotFoundError:
            return []
        except OSError as err:
            raise StoreError.about("out", f"cannot read {str(self.csv_path)!r} ({err.strerror or err}); move it "
                                          "away or give another --out") from None
        lines = data.split(b"\n")
        cut_short = lines[-1] != b""  # every write ends with a newline
        if not cut_short:
            lines.pop()
        header = _split_line(lines[0]) if lines else None
        if header is None or tuple(header) != self.columns:
            raise StoreError.about("out", f"{str(self.csv_path)!r} has columns {header} but {list(self.columns)} "
                                          "were expected; move it away or give another --out")
        rows, seen, key = [], set(), self.columns[0]
        for number, raw in enumerate(lines[1:], start=2):
            fields = _split_line(raw)
            if fields is None:
                reason = "holds a NUL byte or bytes that are not UTF-8"
            elif number == len(lines) and cut_short:
                reason = "the file ends in the middle of this line (cut short)"
            elif len(fields) != len(self.columns):
                reason = f"{len(fields)} fields where {len(self.columns)} columns were expected"
            else:
                row = dict(zip(self.columns, fields))
                reason = row_problem(row, self.columns, floats=self.floats, ints=self.ints)
                if reason is None and row[key] in seen:
                    reason = f"{key} {row[key]!r} is stored twice"
            if reason is None:
                seen.add(row[key])
                rows.append(row)
                continue
            if strict:
                raise StoreError.about("out", f"{str(self.csv_path)!r} line {number}: {reason}; the table is "
                                              "damaged: move it away or give another --out")
            self.rejected.append((number, reason, raw.decode("utf-8", "backslashreplace").replace("\0", "\\0")))
        return rows

    def set_aside(self) -> Path | None:
        """Append the lines :meth:`read_rows` left out to ``<stem>.rejected.txt`` (with their
        line numbers and reasons), atomically; return that file, or ``None`` if none were."""
        if not self.rejected:
            return None
        side = self.folder / f"{self.stem}.rejected.txt"
        try:
            before = side.read_text(errors="backslashreplace") if side.is_file() else ""
        except OSError:
            before = ""
        lines = [f"{self.csv_path.name} line {number}: {reason}: {text}" for number, reason, text in self.rejected]
        atomic_write_text(side, before + "\n".join(lines) + "\n")
        return side

    def write_rows(self, rows) -> None:
        """Replace the CSV by ``rows`` (dicts keyed by :attr:`columns`), atomically."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in self.columns})
        atomic_write_text(self.csv_path, buf.getvalue())

    def read_meta(self) -> dict | None:
        """The JSON beside the CSV, or ``None`` if there is none yet; a file that is not
        a JSON object (with a list of ``sessions``, if any) is refused (:class:`StoreError`)."""
        if not self.json_path.exists() and not self.json_path.is_symlink():
            return None
        try:
            meta = json.loads(read_regular_bytes(self.json_path).decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
            raise StoreError.about("out", f"{str(self.json_path)!r} is not valid JSON ({err}); move it away") from None
        except OSError as err:
            raise StoreError.about("out", f"cannot read {str(self.json_path)!r} ({err.strerror or err}); move it "
                                          "away") from None
        if not isinstance(meta, dict) or not isinstance(meta.get("sessions", []), list):
            raise StoreError.about("out", f"{str(self.json_path)!r} is not a stored result's JSON object (it "
                                          f"holds a {type(meta).__name__}); move it away")
        return meta

    def write_meta(self, meta: dict) -> None:
        """Replace the JSON by ``meta``, atomically."""
        atomic_write_text(self.json_path, json.dumps(meta, indent=2, sort_keys=True, allow_nan=False) + "\n")

    def claim(self, identity: dict) -> dict:
        """Check that an existing JSON describes ``identity`` (else refuse to mix two
        configurations in one file); return the stored metadata or ``{}``."""
        meta = self.read_meta()
        if meta is None:
            if self.csv_path.exists():
                raise StoreError.about("out", f"{str(self.csv_path)!r} has no {self.json_path.name} beside it; "
                                              "move it away")
            return {}
        if meta.get("identity") != identity:
            raise StoreError.about("out", f"{str(self.json_path)!r} belongs to another configuration (hash "
                                          "collision or edited file); "
                "move it away or give another --out"
            )
        return meta


def _split_line(raw: bytes) -> list[str] | None:
    """The CSV fields of one line, or ``None`` for a NUL byte or bytes that are not UTF-8."""
    if b"\0" in raw:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    try:
        return next(csv.reader([text.removesuffix("\r")]), [])
    except csv.Error:
        return None


def spectrum_table(config, *, n: int, d: int, out) -> ResultTable:
    """Where the spectra of one run (``n`` samples of dimension ``d``) live:
    ``<out>/store/spectrum/<loss>/<dataset>/<arch>/``."""
    identity = config_identity(config, task="spectrum")
    folder = store_folder(out, "spectrum", config.loss, config.dataset, architecture_name(d, config.units, config.K))
    return ResultTable(folder, f"n{n}_{config_slug(config)}_{config_hash(identity)}", ("index", "H_L", "H_o", "H_F"))


def store_spectrum(table: ResultTable, result) -> None:
    """Write one run's eigenvalues (CSV) and its result (JSON, with identity) into ``table``."""
    meta = result.to_dict()
    meta["identity"] = config_identity(result.config, task="spectrum")
    meta["hash"] = config_hash(meta["identity"])
    meta["task"] = "spectrum"
    atomic_write_text(table.csv_path, spectrum_csv(result))
    table.write_meta(meta)


def spectra_table(config, *, n: int, d: int, options: dict, out, model: str = "", arch: str = "") -> ResultTable:
    """Where the spectral summary of one run lives (``hessian-rank spectrum``):
    ``<out>/store/spectra/<loss>/<dataset>/<arch>/``, one row per density grid point; ``arch``
    is the built-in MLP's ``64x10x10x10`` unless given (another ``model``, described by ``model``)."""
    identity = _spectra_identity(config, options, model)
    folder = store_folder(out, "spectra", config.loss, config.dataset, arch or architecture_name(d, config.units,
                                                                                                 config.K))
    return ResultTable(folder, f"n{n}_{config_slug(config)}_{config_hash(identity)}", ("matrix", "x", "density"))


def store_spectra(table: ResultTable, result) -> None:
    """Write one :class:`~hessrank.SpectrumResult`: its densities (CSV rows
    ``matrix, x, density``) and its JSON (with identity) into ``table``."""
    meta = result.to_dict()
    meta["identity"] = _spectra_identity(result.config, dict(result.options.__dict__), result.model)
    meta["hash"] = config_hash(meta["identity"])
    meta["task"] = "spectra"
    rows = []
    for name, m in result.matrices.items():
        if m.density is not None:
            rows += [{"matrix": name, "x": repr(float(x)), "density": repr(float(y))}
                     for x, y in zip(m.density.x, m.density.y)]
    table.write_rows(rows)
    table.write_meta(meta)


@contextlib.contextmanager
def _signals_as_interrupt():
    """Within the block, SIGTERM and SIGHUP end it as Ctrl-C does (``KeyboardInterrupt``):
    the rows stored so far stay, the session is closed and the lock removed. Only in the
    main thread, and only where no handler of the program's own is set."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_DFL:
            previous[sig] = signal.signal(sig, interrupt)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _spectra_identity(config, options: dict, model: str) -> dict:
    return config_identity(config, task="spectra", options=options, **({"model": model} if model else {}))


def find_results(root, match) -> list[tuple[Path, dict]]:
    """``(json_path, metadata)`` of every stored result under ``root`` whose metadata
    satisfies ``match(meta)``, sorted by path."""
    found = []
    root = Path(root)
    if not root.exists():
        return found
    for path in sorted(root.rglob("*.json")):
        try:
            meta = json.loads(read_regular_bytes(path).decode("utf-8"))
        except (OSError, ValueError, RecursionError):  # not a stored result (ValueError: JSON, UTF-8)
            continue
        if isinstance(meta, dict) and "identity" in meta and match(meta):
            found.append((path, meta))
    return found
