"""Writing results: atomic files (temporary file + rename), never half-written.

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
import fcntl
import hashlib
import io
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .config import ConfigError


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




# --------------------------------------------------------------------------- #
# The result store: layout, identity, tables.

#: settings that do not change a number (where the data files live, whether to fetch them) stay out of the hash
IDENTITY_EXCLUDED = ("data_dir", "download", "extra")

#: the measured columns every stored row carries, after its own key columns
RESULT_COLUMNS = (
    "rank_L", "rank_o", "rank_F", "pred_L", "pred_o", "pred_F", "kind", "num_params", "r",
    "tol_L", "tol_o", "tol_F", "gap_L", "gap_o", "gap_F", "seconds", "method",
)
_SUFFIX = {"H_L": "L", "H_o": "o", "H_F": "F"}


def architecture_name(d: int, units, K: int) -> str:
    """``64x10x10x10`` for d = 64, hidden widths 10, 10 and K = 10 (the paper's folder name)."""
    return "x".join(str(int(w)) for w in (d, *units, K))


def store_folder(out, task: str, loss: str, dataset: str, *parts) -> Path:
    """``<out>/store/<task>/<loss>/<dataset>/<parts…>``; a data set given as a file path
    contributes its file name only."""
    name = Path(str(dataset)).name or str(dataset)
    return Path(out, "store", task, loss, name, *map(str, parts))


def config_identity(config, **extra) -> dict:
    """Everything that defines a stored result: the run configuration (less
    :data:`IDENTITY_EXCLUDED`) plus ``extra`` (task, swept field, …); JSON-ready."""
    ident = {k: v for k, v in config.to_dict().items() if k not in IDENTITY_EXCLUDED}
    ident.update(extra)
    return json.loads(json.dumps(ident, sort_keys=True))


def config_hash(identity: dict, length: int = 10) -> str:
    """A short stable hash (SHA-256 of the canonical JSON) of an identity dict."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def config_slug(config) -> str:
    """A readable prefix for file names, e.g. ``linear_glorot_nobias_seed1``."""
    return f"{config.activation}_{config.init}_{'bias' if config.bias else 'nobias'}_seed{config.seed}"


def format_float(x) -> str:
    """Exact, round-trip text of a float for CSV; ``""`` for None, ``inf`` for infinity."""
    if x is None:
        return ""
    x = float(x)
    return "inf" if math.isinf(x) else repr(x)


def result_row(result) -> dict[str, str]:
    """The :data:`RESULT_COLUMNS` of one :class:`~hessrank.experiment.Result`, as CSV text."""
    pred = result.prediction
    row = {}
    for name, s in _SUFFIX.items():
        row[f"rank_{s}"] = str(result.ranks[name].rank)
    for name, s in _SUFFIX.items():
        row[f"pred_{s}"] = str(getattr(pred, name))
    row["kind"] = pred.kind
    row["num_params"] = str(result.p)
    row["r"] = str(result.r)
    for name, s in _SUFFIX.items():
        row[f"tol_{s}"] = format_float(result.ranks[name].tol)
    for name, s in _SUFFIX.items():
        row[f"gap_{s}"] = format_float(result.ranks[name].gap_decades)
    row["seconds"] = f"{result.seconds:.3f}"
    row["method"] = result.method_label
    return row


def row_matches_prediction(row: dict) -> bool:
    """Whether a stored row's three measured ranks equal its three predictions."""
    return all(str(row[f"rank_{s}"]) == str(row[f"pred_{s}"]) for s in _SUFFIX.values())


@dataclass(kw_only=True)
class StoredOutcome:
    """What a sweep or grid left in the store: its table, every stored row, the points
    computed by this call and how many were stored before it."""

    table: "ResultTable"
    rows: list[dict[str, str]] = field(default_factory=list)
    computed: list = field(default_factory=list)
    stored_before: int = 0


class ResultTable:
    """One stored result: ``<folder>/<stem>.csv`` (rows), ``<stem>.json`` (what produced
    them) and ``<stem>.lock``.

    Writers hold :meth:`lock` for their whole session; :meth:`write_rows` and
    :meth:`write_meta` replace the file atomically, so readers and a later resume see
    either the previous or the new complete file, never a part.
    """

    def __init__(self, folder, stem: str, columns):
        self.folder = Path(folder)
        self.stem = stem
        self.columns = tuple(columns)
        self.csv_path = self.folder / f"{stem}.csv"
        self.json_path = self.folder / f"{stem}.json"
        self.lock_path = self.folder / f"{stem}.lock"

    @contextlib.contextmanager
    def lock(self):
        """Hold an exclusive lock on this result; refuse (ConfigError) if another process
        holds it. The OS releases it when the holder dies, even by SIGKILL."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConfigError(
                    f"--out: another process is writing {str(self.csv_path)!r} (lock {self.lock_path.name} is held); "
                    "wait for it to finish or give another --out"
                ) from None
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._remove_stale_temporaries()
            yield self
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _remove_stale_temporaries(self) -> None:
        # left by a writer killed between creating its temporary file and the rename
        for path in (self.csv_path, self.json_path):
            for tmp in self.folder.glob(f".{path.name}.*.tmp"):
                tmp.unlink(missing_ok=True)

    def exists(self) -> bool:
        return self.csv_path.exists()

    def read_rows(self) -> list[dict[str, str]]:
        """The stored rows as text, exactly as written; ``[]`` if there is no file yet."""
        if not self.csv_path.exists():
            return []
        with self.csv_path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            if tuple(reader.fieldnames or ()) != self.columns:
                raise ConfigError(
                    f"--out: {str(self.csv_path)!r} has columns {reader.fieldnames} but {list(self.columns)} "
                    "were expected; move it away or give another --out"
                )
            return list(reader)

    def write_rows(self, rows) -> None:
        """Replace the CSV by ``rows`` (dicts keyed by :attr:`columns`), atomically."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in self.columns})
        atomic_write_text(self.csv_path, buf.getvalue())

    def read_meta(self) -> dict | None:
        if not self.json_path.exists():
            return None
        try:
            return json.loads(self.json_path.read_text())
        except json.JSONDecodeError as err:
            raise ConfigError(f"--out: {str(self.json_path)!r} is not valid JSON ({err}); move it away") from None

    def write_meta(self, meta: dict) -> None:
        atomic_write_text(self.json_path, json.dumps(meta, indent=2, sort_keys=True, allow_nan=False) + "\n")

    def claim(self, identity: dict) -> dict:
        """Check that an existing JSON describes ``identity`` (else refuse to mix two
        configurations in one file); return the stored metadata or ``{}``."""
        meta = self.read_meta()
        if meta is None:
            if self.csv_path.exists():
                raise ConfigError(f"--out: {str(self.csv_path)!r} has no {self.json_path.name} beside it; move it away")
            return {}
        if meta.get("identity") != identity:
            raise ConfigError(
                f"--out: {str(self.json_path)!r} belongs to another configuration (hash collision or edited file); "
                "move it away or give another --out"
            )
        return meta


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


def find_results(root, match) -> list[tuple[Path, dict]]:
    """``(json_path, metadata)`` of every stored result under ``root`` whose metadata
    satisfies ``match(meta)``, sorted by path."""
    found = []
    root = Path(root)
    if not root.exists():
        return found
    for path in sorted(root.rglob("*.json")):
        try:
            meta = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(meta, dict) and "identity" in meta and match(meta):
            found.append((path, meta))
    return found


__all__ = [
    "atomic_output", "atomic_write_text", "check_writable", "spectrum_csv", "write_spectrum_csv",
    "RESULT_COLUMNS", "ResultTable", "architecture_name", "config_hash", "config_identity", "config_slug",
    "find_results", "format_float", "spectrum_table", "store_spectrum", "result_row", "row_matches_prediction",
    "store_folder",
]
