"""Where the files of a data set are looked for, and where ``--download`` puts them.

Search order (the first folder holding every needed file wins):

1. ``--data-dir DIR``: ``DIR/<subfolder>`` for each of the data set's subfolders,
   then ``DIR`` itself (a folder holding just the files);
2. ``$HESSRANK_DATA``: ``$HESSRANK_DATA/<subfolder>``;
3. the defaults: ``./data/<subfolder>`` (the paper's scripts kept torchvision's
   ``data/`` folder next to them), ``${XDG_CACHE_HOME:-~/.cache}/hessrank/<subfolder>``
   (where ``--download`` writes when neither of the above is set), and
   ``/usr/share/datasets/<subfolder>`` (Debian's ``dataset-*`` packages).

The subfolders cover torchvision's layout (``MNIST/raw``, ``FashionMNIST/raw``,
``cifar-10-batches-py``) and Debian's (``fashion-mnist``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ENV_DATA = "HESSRANK_DATA"
DEFAULT_ORIGIN = "default search path"
DEBIAN_DATASETS = Path("/usr/share/datasets")


@dataclass(frozen=True)
class RemoteFile:
    """A file on a mirror, the MD5 of its bytes (the checksum the publishers give) and
    its size in bytes, where published (``None``: bounded by :data:`MAX_DOWNLOAD_BYTES`)."""

    name: str
    md5: str
    size: int | None = None


#: a download of unknown size stops here: a hostile or broken mirror cannot fill the disk
MAX_DOWNLOAD_BYTES = 1 << 30


def md5_file(path) -> str:
    """Hex MD5 of a file's bytes (the checksum the data publishers give)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _exact_file(folder: Path, name: str) -> Path | None:
    return folder / name if (folder / name).is_file() else None


@dataclass(frozen=True)
class FileSet:
    """A data set stored as files: which files, where they may lie, how to fetch them."""

    name: str
    aliases: tuple[str, ...]
    subfolders: tuple[str, ...]
    files: tuple[str, ...]
    downloads: tuple[RemoteFile, ...]
    mirrors: tuple[str, ...]
    install_folder: str
    other_way: str = ""
    #: how a needed file is found in a folder: (folder, name) -> path or None
    find_file: Callable[[Path, str], Path | None] = _exact_file
    #: run on the install folder after the downloads (e.g. extract an archive)
    unpack: Callable[[Path], None] | None = None

    def complete(self, folder: Path) -> bool:
        """Whether ``folder`` holds every needed file."""
        return folder.is_dir() and all(self.find_file(folder, f) is not None for f in self.files)


def cache_dir() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/hessrank``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "hessrank"


def search_roots(data_dir: str | None = None) -> list[tuple[Path, str]]:
    """The roots searched, in order, each with how it was chosen."""
    roots = []
    if data_dir:
        roots.append((Path(data_dir).expanduser(), "--data-dir"))
    if os.environ.get(ENV_DATA):
        roots.append((Path(os.environ[ENV_DATA]).expanduser(), f"${ENV_DATA}"))
    roots += [(root, DEFAULT_ORIGIN) for root in (Path("data").absolute(), cache_dir(), DEBIAN_DATASETS)]
    return roots


def describe_roots(data_dir: str | None = None) -> str:
    """The searched roots in order, on one line (``--data-dir D; $HESSRANK_DATA E; ./data; …``)."""
    return "; ".join(str(root) if origin == DEFAULT_ORIGIN else f"{origin} {root}"
                     for root, origin in search_roots(data_dir))


def candidate_folders(fileset: FileSet, data_dir: str | None = None) -> list[tuple[Path, str]]:
    """Every folder that may hold ``fileset``, in search order, with its origin."""
    out = []
    for root, origin in search_roots(data_dir):
        out += [(root / sub, origin) for sub in fileset.subfolders]
        if origin == "--data-dir":
            out.append((root, origin))
    return out


def find_folder(fileset: FileSet, data_dir: str | None = None) -> tuple[Path, str] | None:
    """The first folder holding every file of ``fileset`` and its origin, or ``None``."""
    for folder, origin in candidate_folders(fileset, data_dir):
        if fileset.complete(folder):
            return folder, origin
    return None


def download_root(data_dir: str | None = None) -> Path:
    """Where ``--download`` writes: ``--data-dir``, else ``$HESSRANK_DATA``, else the cache."""
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get(ENV_DATA):
        return Path(os.environ[ENV_DATA]).expanduser()
    return cache_dir()


def get_command(fileset: FileSet, data_dir: str | None = None) -> str:
    """The one command that fetches ``fileset`` to where it will be found."""
    cmd = f"hessian-rank datasets --download {fileset.name}"
    return cmd + (f" --data-dir {data_dir}" if data_dir else "")


def missing_message(fileset: FileSet, data_dir: str | None = None) -> str:
    """One line: where we looked for ``fileset`` and how to get it."""
    subs = ", ".join(fileset.subfolders)
    files = " and ".join(f"{f}{'[.gz]' if fileset.find_file is not _exact_file else ''}" for f in fileset.files)
    other = f", or {fileset.other_way}" if fileset.other_way else ""
    return (f"--dataset {fileset.name}: files not found; looked in {describe_roots(data_dir)} (each with "
            f"subfolders {subs}); "
            f"get them with `{get_command(fileset, data_dir)}` (needs internet; or add --download to this command)"
            f"{other}, or put {files} in {download_root(data_dir) / fileset.install_folder}")
