"""CIFAR-10: the python batches of ``cifar-10-batches-py/``, read safely.

The batches are pickles, and unpickling can run code. So a batch is read only
after its MD5 matches the checksum table (by default the publishers' checksums
of the official files, the ones torchvision also checks), and then with an
unpickler that builds nothing but dicts, lists, bytes, str, int and NumPy
arrays of plain numbers. A tampered, corrupt or truncated file fails with one line.
"""

from __future__ import annotations

import hashlib
import pickle
import tarfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..atomicio import atomic_output
from ..errors import DataError
from .locate import FileSet, RemoteFile, md5_file

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))

#: MD5 of each official file of cifar-10-python.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html)
OFFICIAL_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
ARCHIVE = RemoteFile("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a", 170498071)
ARCHIVE_FOLDER = "cifar-10-batches-py"


def _safe_dtype(spec, *args):
    dtype = np.dtype(spec, *args)
    if dtype.hasobject:
        raise pickle.UnpicklingError(f"refusing a NumPy array of Python objects (dtype {dtype})")
    return dtype


def _reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct as fn  # NumPy >= 2
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core.multiarray import _reconstruct as fn
    return fn


class _RestrictedUnpickler(pickle.Unpickler):
    """Builds dict, list, tuple, bytes, str, int, float and NumPy arrays; nothing else."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: _safe_dtype,
    }

    def find_class(self, module, name):
        try:
            return self._ALLOWED[(module, name)]()
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to build {module}.{name}") from None


def _field(batch: dict, key: str):
    for k in (key.encode(), key):
        if k in batch:
            return batch[k]
    raise DataError(f"no {key!r} entry")


def read_cifar_batch(path, *, md5: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) of one batch file.

    ``md5``: the checksum the file must have (checked before unpickling); ``None``
    skips the check — only for files you made yourself.
    """
    path = Path(path)
    if md5 is not None:
        got = md5_file(path)
        if got != md5:
            raise DataError(f"{path}: checksum mismatch (md5 {got}, expected {md5}); the file is corrupt, "
                              "truncated or not the official one; delete it and fetch it again")
    try:
        with open(path, "rb") as fh:
            batch = _RestrictedUnpickler(fh, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as err:
        raise DataError(f"{path}: not a valid CIFAR-10 batch ({type(err).__name__}: {err})") from None
    try:
        if not isinstance(batch, dict):
            raise DataError(f"a {type(batch).__name__}, not a dict")
        data, labels = _field(batch, "data"), _field(batch, "labels")
        if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
                and data.shape[1] == 3 * 32 * 32):
            raise DataError("'data' is not a uint8 array of shape (N, 3072)")
        if not (isinstance(labels, list) and len(labels) == data.shape[0]
                and all(type(v) is int and 0 <= v < 10 for v in labels)):
            raise DataError(f"'labels' is not a list of {data.shape[0]} integers 0..9")
    except DataError as err:
        raise DataError(f"{path}: not a valid CIFAR-10 batch ({err})") from None
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def read_cifar_train(folder, *, checksums: Mapping[str, str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The 50 000 training images (N, 3, 32, 32) uint8 and labels of ``data_batch_1 … 5``, in file order.

    ``checksums``: MD5 per batch name; default :data:`OFFICIAL_MD5`.
    """
    checksums = OFFICIAL_MD5 if checksums is None else checksums
    parts = [read_cifar_batch(Path(folder) / name, md5=checksums[name]) for name in TRAIN_BATCHES]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def paper_images(images: np.ndarray) -> np.ndarray:
    """The first colour channel (red) of (N, 3, H, W) images, as the (N, W, H) arrays the
    paper flattened: its code transposed height and width (``torch.transpose(x, 1, 3)`` of
    an N×H×W×C batch) before resizing, so its vectors list the pixels column by column."""
    return np.ascontiguousarray(images[:, 0].transpose(0, 2, 1))


def unpack_archive(folder: Path, *, checksums: Mapping[str, str] | None = None) -> None:
    """Extract the training batches of the downloaded archive in ``folder`` into ``folder``.

    Only the expected members are read (by name, as regular files); each is written
    atomically and checked against ``checksums`` (default :data:`OFFICIAL_MD5`);
    the archive is removed afterwards.
    """
    checksums = OFFICIAL_MD5 if checksums is None else checksums
    archive = folder / ARCHIVE.name
    wanted = {f"{ARCHIVE_FOLDER}/{name}": name for name in TRAIN_BATCHES}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                name = wanted.pop(member.name, None)
                if name is None:
                    continue
                if not member.isfile():
                    raise DataError(f"{archive}: member {member.name} is not a regular file")
                digest = hashlib.md5(usedforsecurity=False)
                with tar.extractfile(member) as src, atomic_output(folder / name, "wb") as dst:
                    for block in iter(lambda: src.read(1 << 20), b""):
                        digest.update(block)
                        dst.write(block)
                    if digest.hexdigest() != checksums[name]:
                        raise DataError(f"{archive}: {member.name} has md5 {digest.hexdigest()}, "
                                          f"expected {checksums[name]}")
    except (tarfile.TarError, EOFError, OSError) as err:
        raise DataError(f"{archive}: cannot unpack ({err}); delete it and fetch it again") from None
    if wanted:
        raise DataError(f"{archive}: missing {', '.join(sorted(wanted))}")
    archive.unlink()


CIFAR10 = FileSet(
    name="CIFAR10",
    aliases=("cifar10", "cifar-10", "cifar_10", "cifar"),
    subfolders=(ARCHIVE_FOLDER, f"CIFAR10/{ARCHIVE_FOLDER}", f"cifar10/{ARCHIVE_FOLDER}"),
    files=TRAIN_BATCHES,
    downloads=(ARCHIVE,),
    mirrors=("https://www.cs.toronto.edu/~kriz/",),
    install_folder=ARCHIVE_FOLDER,
    unpack=unpack_archive,
)
