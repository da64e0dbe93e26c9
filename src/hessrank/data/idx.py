"""MNIST and Fashion-MNIST: the IDX files (gzip-compressed or raw).

IDX layout (big-endian): two zero bytes, a type code (``0x08`` = uint8), the
number of dimensions ``k``, then ``k`` 32-bit sizes, then the values in C order.
A file is accepted only if its magic, type and size agree with its header; a
``.gz`` file must also pass gzip's CRC-32 and length check. The training images
are ``train-images-idx3-ubyte`` (N × 28 × 28), the labels ``train-labels-idx1-ubyte`` (N).
"""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from .locate import FileSet, RemoteFile

#: IDX type codes -> big-endian NumPy dtypes
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

#: the most bytes an IDX file may unpack into (MNIST's training images: 47 MB)
MAX_IDX_BYTES = 1 << 30

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"


def idx_file(folder: Path, stem: str) -> Path | None:
    """The file for ``stem`` in ``folder``: ``stem.gz``, ``stem``, or the name with a dot
    before ``idx`` (``train-images.idx3-ubyte``, as some unzip tools write it), each ``.gz`` or raw."""
    head, idx, tail = stem.rsplit("-", 2)
    dotted = f"{head}.{idx}-{tail}"
    for name in (f"{stem}.gz", stem, f"{dotted}.gz", dotted):
        if (folder / name).is_file():
            return folder / name
    return None


MNIST = FileSet(
    name="MNIST",
    aliases=("mnist",),
    subfolders=("MNIST/raw", "MNIST", "mnist"),
    files=(TRAIN_IMAGES, TRAIN_LABELS),
    downloads=(
        RemoteFile(f"{TRAIN_IMAGES}.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873", 9912422),
        RemoteFile(f"{TRAIN_LABELS}.gz", "d53e105ee54ea40749a09fcbcd1e9432", 28881),
    ),
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    install_folder="MNIST/raw",
    find_file=idx_file,
)

FASHION_MNIST = FileSet(
    name="FashionMNIST",
    aliases=("fashionmnist", "fashion-mnist", "fashion_mnist", "fashion"),
    subfolders=("FashionMNIST/raw", "FashionMNIST", "fashion-mnist", "fashion_mnist"),
    files=(TRAIN_IMAGES, TRAIN_LABELS),
    downloads=(
        RemoteFile(f"{TRAIN_IMAGES}.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", 26421880),
        RemoteFile(f"{TRAIN_LABELS}.gz", "25c81989df183df01b3e8a0aad5dffbe", 29515),
    ),
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    install_folder="FashionMNIST/raw",
    find_file=idx_file,
    other_way="apt-get install dataset-fashion-mnist (Debian/Ubuntu: /usr/share/datasets/fashion-mnist)",
)


def _read_bytes(path: Path, *, limit: int | None = None) -> bytes:
    """The bytes of ``path``, gunzipped if they start with the gzip magic (whatever the name says);
    at most ``limit + 1`` unpacked bytes (one more than the header declares, to see trailing
    bytes), and never more than :data:`MAX_IDX_BYTES` + 1."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror})") from None
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
            # bounded: a small file may claim to unpack into terabytes
            out = fh.read(min(MAX_IDX_BYTES, MAX_IDX_BYTES if limit is None else limit) + 1)
            if len(out) > MAX_IDX_BYTES:
                raise DataError(f"{path}: unpacks to more than {MAX_IDX_BYTES} bytes; no IDX data set is that "
                                "large")
            return out
    except (OSError, EOFError, zlib.error) as err:
        # a bad CRC or length is gzip.BadGzipFile (an OSError); a cut-off stream, EOFError
        raise DataError(f"{path}: corrupt or truncated gzip file ({err}); delete it and fetch it again") from None


def parse_idx(data: bytes, *, what: str = "IDX data") -> np.ndarray:
    """The array stored in IDX bytes; :class:`DataError` if magic, type or size are wrong."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{what}: not an IDX file (bad magic number {data[:4].hex() or 'empty'}, expected 0000xxyy)")
    code, ndim = data[2], data[3]
    if code not in IDX_TYPES:
        raise DataError(f"{what}: IDX type code 0x{code:02x} is not one of "
                          f"{', '.join(f'0x{c:02x}' for c in IDX_TYPES)}")
    header = 4 + 4 * ndim
    if ndim < 1 or len(data) < header:
        raise DataError(f"{what}: truncated IDX header ({len(data)} bytes for {ndim} dimensions)")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_TYPES[code])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "has trailing bytes"
        raise DataError(f"{what}: IDX file {kind}: header says shape {shape} ({expected} bytes), file has "
                        f"{len(data)} bytes")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def _declared_size(path: Path) -> int | None:
    """The total size an IDX file's header declares (header included), read without
    unpacking the body; ``None`` when the header cannot be read (the full read explains).
    A declared size above :data:`MAX_IDX_BYTES` is refused here, before anything that
    size is read or allocated."""
    try:
        with path.open("rb") as raw:
            gz = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            fh = gzip.GzipFile(fileobj=raw) if gz else raw
            head = fh.read(4)
            if len(head) == 4 and head[:2] == b"\x00\x00":
                head += fh.read(4 * head[3])
    except (OSError, EOFError, zlib.error):
        return None
    if len(head) < 4 or head[:2] != b"\x00\x00" or head[2] not in IDX_TYPES or len(head) < 4 + 4 * head[3]:
        return None
    shape = tuple(int(v) for v in np.frombuffer(head, dtype=">u4", count=head[3], offset=4))
    declared = 4 + 4 * head[3] + int(np.prod(shape, dtype=object)) * np.dtype(IDX_TYPES[head[2]]).itemsize
    if declared > MAX_IDX_BYTES:
        raise DataError(f"{path}: IDX header says shape {shape} ({declared} bytes), more than {MAX_IDX_BYTES} bytes; "
                        "no IDX data set is that large")
    return declared


def read_idx(path) -> np.ndarray:
    """Read one IDX file (``.gz`` or raw) into an array, checked as :func:`parse_idx` does;
    a header that disagrees with the file's size is refused before the body is read."""
    path = Path(path)
    return parse_idx(_read_bytes(path, limit=_declared_size(path)), what=str(path))


def read_idx_pair(folder) -> tuple[np.ndarray, np.ndarray]:
    """Training images (N, H, W) uint8 and labels (N,) from the IDX files in ``folder``."""
    folder = Path(folder)
    paths = {stem: idx_file(folder, stem) for stem in (TRAIN_IMAGES, TRAIN_LABELS)}
    missing = [stem for stem, p in paths.items() if p is None]
    if missing:
        raise DataError(f"{folder}: missing {', '.join(missing)}[.gz]")
    images, labels = read_idx(paths[TRAIN_IMAGES]), read_idx(paths[TRAIN_LABELS])
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"{paths[TRAIN_IMAGES]}: expected uint8 images of shape (N, H, W), got {images.dtype} "
                        f"{images.shape}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DataError(f"{paths[TRAIN_LABELS]}: expected {images.shape[0]} labels (one per image), got shape "
                        f"{labels.shape}")
    return images, labels.astype(np.int64)

