"""Generated data files for the reader tests (written independently of the readers)."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np

from hessrank.data import locate


def idx_bytes(array) -> bytes:
    """IDX encoding of a uint8 array: 0, 0, type 0x08, ndim, big-endian sizes, values."""
    array = np.asarray(array, dtype=np.uint8)
    return struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_idx(path, array, *, gz: bool) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_mnist(folder, images, labels, *, gz: bool = True) -> Path:
    """The two training files in ``folder`` (``.gz`` or raw)."""
    suffix = ".gz" if gz else ""
    write_idx(Path(folder) / f"train-images-idx3-ubyte{suffix}", images, gz=gz)
    write_idx(Path(folder) / f"train-labels-idx1-ubyte{suffix}", labels, gz=gz)
    return Path(folder)


class _Py2Pickler(pickle._Pickler):
    """Pickles as Python 2's cPickle did (protocol 2, every str/bytes a BINSTRING), like the official batches."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_str8(self, obj):
        raw = obj.encode("latin1") if isinstance(obj, str) else bytes(obj)
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[str] = _save_str8
    dispatch[bytes] = _save_str8


def cifar_batch_bytes(data: np.ndarray, labels) -> bytes:
    """A batch pickled as the official files are: a Python 2 pickle of a dict with 'batch_label',
    'labels' (list of int), 'data' (N × 3072 uint8: 1024 red, 1024 green, 1024 blue, row-major), 'filenames'."""
    batch = {"batch_label": "generated", "labels": [int(v) for v in labels],
             "data": np.ascontiguousarray(data, dtype=np.uint8), "filenames": ["x.png"] * len(labels)}
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(batch)
    # the official files name NumPy's module as NumPy 1 did
    return buf.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


def write_cifar(folder, data_per_batch, labels_per_batch) -> dict[str, str]:
    """data_batch_1..5 in ``folder``; returns their MD5 table."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table = {}
    for i, (data, labels) in enumerate(zip(data_per_batch, labels_per_batch), start=1):
        raw = cifar_batch_bytes(data, labels)
        (folder / f"data_batch_{i}").write_bytes(raw)
        table[f"data_batch_{i}"] = hashlib.md5(raw).hexdigest()
    return table


def cifar_tarball(path, files: dict[str, bytes]) -> str:
    """A .tar.gz holding ``files`` (member name -> bytes); returns its MD5."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, raw in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    Path(path).write_bytes(buf.getvalue())
    return hashlib.md5(buf.getvalue()).hexdigest()


def md5(path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def isolate(monkeypatch, tmp_path) -> None:
    """No default search root of this machine is seen: cwd, cache and Debian folder all empty."""
    monkeypatch.delenv("HESSRANK_DATA", raising=False)
    monkeypatch.delenv("HESSRANK_MIRROR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(locate, "DEBIAN_DATASETS", tmp_path / "usr-share-datasets")
    work = tmp_path / "cwd"
    work.mkdir(exist_ok=True)
    monkeypatch.chdir(work)


def write_file(folder, name, text):
    """``folder / name`` with ``text`` in it (a grid file, a config); the path."""
    path = folder / name
    path.write_text(text)
    return path
