"""A user's own data: ``--dataset path/to/file.npz`` or ``path/to/file.csv``.

* ``.npz``: array ``X`` of shape (n, d) and ``y``: integer labels (n,) or real
  targets (n, K). Loaded with ``allow_pickle=False``: no code runs.
* ``.csv``: comma-separated numbers, one sample per row, the last column the
  integer label; a first row with no number in it is taken as a header.

Inputs are used as given (no scaling, no resizing). Integer labels name classes:
the distinct label values in increasing order are classes 0, 1, 2, …, and the
paper's selection applies (the first ``K`` classes, one-hot targets; ``K = 1``:
the first two, −1 for the smaller label and +1 for the larger). Real targets
(n, K) are used as they are. Every value must be finite.
"""

from __future__ import annotations

import csv
import hashlib
import warnings
import zipfile
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from .base import Dataset, encode_dataset, select_samples

SUFFIXES = (".npz", ".csv")


def is_user_file(name: str) -> bool:
    """Whether ``--dataset name`` names a user file (by its suffix)."""
    return str(name).lower().endswith(SUFFIXES)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_npz_members(path, names) -> None:
    """Refuse, before any array is read, a member whose ``.npy`` header claims more data than
    the member holds (a damaged or hostile file would otherwise allocate what it claims)."""
    with zipfile.ZipFile(path) as zf:
        for name in names:
            info = zf.getinfo(f"{name}.npy")
            with zf.open(info) as fh:
                version = np.lib.format.read_magic(fh)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                    np.lib.format.read_array_header_2_0
                shape, _, dtype = read_header(fh)
                body = info.file_size - fh.tell()
            if dtype.hasobject:
                continue  # refused by NumPy itself (allow_pickle=False), with its own message
            claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if claimed != body:
                raise DataError.invalid("dataset", str(path), f"array {name!r} claims shape {shape} of {dtype} "
                                        f"({claimed} bytes) but the file holds {body} bytes for it")


def read_npz(path) -> tuple[np.ndarray, np.ndarray]:
    """Arrays ``X`` and ``y`` of an ``.npz`` file, unvalidated."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            if not {"X", "y"} <= keys:
                raise DataError.invalid("dataset", str(path), f"needs arrays 'X' (n, d) and 'y'; "
                                  f"the file has {', '.join(sorted(keys)) or 'no arrays'}")
            _check_npz_members(path, ("X", "y"))
            return npz["X"], npz["y"]
    except DataError:
        raise
    except ValueError as err:  # e.g. "Object arrays cannot be loaded when allow_pickle=False"
        raise DataError.invalid("dataset", str(path), f"cannot read ({err})") from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile) as err:
        raise DataError.invalid("dataset", str(path),
                                f"not a readable .npz file ({type(err).__name__}: {err})") from None


def _csv_cell_error(path, rows_skipped: int) -> str:
    """Locate the first cell of a CSV file that is not a number (slow path, for the message)."""
    with open(path, newline="") as fh:
        for r, row in enumerate(csv.reader(fh), start=1):
            if r <= rows_skipped:
                continue
            for c, cell in enumerate(row, start=1):
                try:
                    float(cell)
                except ValueError:
                    if c == len(row):
                        return f"row {r}, column {c}: the label {cell!r} is not an integer; labels must be integers"
                    return f"row {r}, column {c}: {cell!r} is not a number"
    return "rows of different lengths"


def read_csv(path) -> tuple[np.ndarray, np.ndarray]:
    """Features (n, d) and labels (n,) of a CSV file (last column the label), unvalidated."""
    try:
        with open(path, "rb") as fh:
            if b"\0" in fh.read(1 << 16):
                raise DataError.invalid("dataset", str(path), "holds NUL bytes: not a text CSV file")
        with open(path, newline="") as fh:
            first = next(csv.reader(fh), None)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError.invalid("dataset", str(path), f"cannot read as CSV ({err})") from None
    if first is None:
        raise DataError.invalid("dataset", str(path), "the file is empty")

    def number(cell):
        try:
            float(cell)
            return True
        except ValueError:
            return False

    header = not any(number(c) for c in first)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": reported below
            table = np.loadtxt(path, delimiter=",", skiprows=int(header), ndmin=2, dtype=np.float64)
    except ValueError:
        try:
            where = _csv_cell_error(path, int(header))
        except (OSError, UnicodeDecodeError, csv.Error) as err:
            where = f"cannot read as CSV ({err})"
        raise DataError.invalid("dataset", str(path), where) from None
    if table.shape[0] == 0:
        raise DataError.invalid("dataset", str(path), "no data rows")
    if table.shape[1] < 2:
        raise DataError.invalid("dataset", str(path), "needs at least one feature column and the label column")
    return table[:, :-1], table[:, -1]


def _check(path, X, y) -> None:
    name = f"--dataset {str(path)!r}"
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise DataError(f"{name}: X must have shape (n, d); it has shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise DataError(f"{name}: X must hold real numbers; it holds {X.dtype}")
    if y.shape[:1] != X.shape[:1] or y.ndim not in (1, 2):
        raise DataError(f"{name}: y must have shape ({X.shape[0]},) or ({X.shape[0]}, K); it has shape {y.shape}")
    if y.dtype.kind not in "biuf":
        raise DataError(f"{name}: labels y must be integers; they are {y.dtype}")
    for arr, what in ((X, "X"), (y, "y")):
        bad = ~np.isfinite(arr.astype(np.float64))
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise DataError(f"{name}: {what} holds {int(bad.sum())} NaN or infinite values "
                              f"(first at index {where}); every value must be finite")
    if y.ndim == 1 and y.dtype.kind == "f" and not np.all(y == np.round(y)):
        i = int(np.flatnonzero(y != np.round(y))[0])
        raise DataError(f"{name}: labels y must be integers; y[{i}] = {float(y[i])!r} (give real-valued targets "
                        "as y of shape (n, K))")


def load_user_file(path, *, n: int | None, K: int, label_noise: float = 0.0, seed: int = 1) -> Dataset:
    """The samples of a user's ``.npz`` or ``.csv`` file, selected and encoded as described above."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError.invalid("dataset", str(path), "no such file")
    X, y = read_npz(path) if path.suffix.lower() == ".npz" else read_csv(path)
    _check(path, X, y)
    source = f"user file {path.resolve()} (sha256 {_sha256(path)[:16]})"
    X = np.asarray(X, dtype=np.float64)
    if y.ndim == 2:  # real-valued targets, used as they are
        if y.shape[1] != K:
            raise ConfigError.invalid("K", K, f"{path} has targets y with {y.shape[1]} columns; use --K {y.shape[1]}")
        if label_noise:
            raise ConfigError.invalid("label_noise", label_noise, f"{path} has real-valued targets y (n, K); "
                              "label noise needs integer labels y (n,)")
        if n is not None and n > X.shape[0]:
            raise ConfigError.invalid("n", n, f"{path} has only {X.shape[0]} rows; use --n <= {X.shape[0]}")
        rows = slice(None) if n is None else slice(0, n)
        Y = np.asarray(y, dtype=np.float64)[rows]
        return Dataset(X=np.ascontiguousarray(X[rows]), Y=np.ascontiguousarray(Y), labels=np.argmax(Y, axis=1),
                       name=str(path), source=source)
    _, classes = np.unique(y, return_inverse=True)
    idx = select_samples(classes, n=n, K=K, name=str(path))
    return encode_dataset(X[idx], classes[idx], K=K, name=str(path), source=source,
                          label_noise=label_noise, seed=seed)
