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
import fcntl
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..atomicio import atomic_write_text
from ..errors import StoreError
from .identity import architecture_name, config_hash, config_identity, config_slug, store_folder
from .rows import spectrum_csv


@dataclass(kw_only=True)
class StoredOutcome:
    """What a sweep or grid left in the store: its table, every stored row, the points
    computed by this call and how many were stored before it."""

    table: ResultTable
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
        """Hold an exclusive lock on this result; refuse (StoreError) if another process
        holds it. The OS releases it when the holder dies, even by SIGKILL."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreError.about("out", f"another process is writing {str(self.csv_path)!r} (lock "
                                              f"{self.lock_path.name} is held); "
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
        """Whether the CSV exists."""
        return self.csv_path.exists()

    def read_rows(self) -> list[dict[str, str]]:
        """The stored rows as text, exactly as written; ``[]`` if there is no file yet."""
        if not self.csv_path.exists():
            return []
        with self.csv_path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            if tuple(reader.fieldnames or ()) != self.columns:
                raise StoreError.about("out", f"{str(self.csv_path)!r} has columns {reader.fieldnames} but "
                                              f"{list(self.columns)} "
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
        """The JSON beside the CSV, or ``None`` if there is none yet."""
        if not self.json_path.exists():
            return None
        try:
            return json.loads(self.json_path.read_text())
        except json.JSONDecodeError as err:
            raise StoreError.about("out", f"{str(self.json_path)!r} is not valid JSON ({err}); move it away") from None

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


def spectra_table(config, *, n: int, d: int, options: dict, out) -> ResultTable:
    """Where the spectral summary of one run lives (``hessian-rank spectrum``):
    ``<out>/store/spectra/<loss>/<dataset>/<arch>/``, one row per density grid point."""
    identity = config_identity(config, task="spectra", options=options)
    folder = store_folder(out, "spectra", config.loss, config.dataset, architecture_name(d, config.units, config.K))
    return ResultTable(folder, f"n{n}_{config_slug(config)}_{config_hash(identity)}", ("matrix", "x", "density"))


def store_spectra(table: ResultTable, result) -> None:
    """Write one :class:`~hessrank.measure.SpectrumResult`: its densities (CSV rows
    ``matrix, x, density``) and its JSON (with identity) into ``table``."""
    meta = result.to_dict()
    meta["identity"] = config_identity(result.config, task="spectra", options=dict(result.options.__dict__))
    meta["hash"] = config_hash(meta["identity"])
    meta["task"] = "spectra"
    rows = []
    for name, m in result.matrices.items():
        if m.density is not None:
            rows += [{"matrix": name, "x": repr(float(x)), "density": repr(float(y))}
                     for x, y in zip(m.density.x, m.density.y)]
    table.write_rows(rows)
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
