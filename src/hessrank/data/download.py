"""``--download``: fetch a data set's files from its mirrors, checksums verified.

Each file is streamed into a temporary file next to its destination while its
MD5 is computed; only a file whose MD5 equals the published one is renamed into
place, so no half-written or wrong file is ever left behind. Mirrors are tried
in order. ``$HESSRANK_MIRROR`` (base URLs separated by spaces or commas) replaces
the public mirror list, e.g. for an institutional mirror.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from ..atomicio import atomic_output
from ..errors import DataError, StoreError
from .locate import MAX_DOWNLOAD_BYTES, FileSet, RemoteFile, download_root, md5_file

ENV_MIRROR = "HESSRANK_MIRROR"
TIMEOUT_S = 60


class _ChecksumMismatch(Exception):
    pass


def mirrors_of(fileset: FileSet) -> tuple[str, ...]:
    """The base URLs to try for ``fileset``: ``$HESSRANK_MIRROR`` if set, else its public mirrors."""
    env = os.environ.get(ENV_MIRROR, "").replace(",", " ").split()
    return tuple(env) if env else fileset.mirrors


def fetch_file(remote: RemoteFile, folder: Path, mirrors, *, log=None) -> Path:
    """``folder/remote.name`` with MD5 ``remote.md5``, downloaded unless already there.

    Raises :class:`DataError` naming every mirror tried and why it failed.
    """
    dest = Path(folder) / remote.name
    if dest.is_file() and md5_file(dest) == remote.md5:
        return dest
    errors = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + remote.name
        if not url.startswith(("http://", "https://")):
            errors.append(f"{url}: only http:// and https:// mirrors are used")
            continue
        print(f"downloading {url}", file=log or sys.stderr)
        digest = hashlib.md5(usedforsecurity=False)
        limit = remote.size if remote.size is not None else MAX_DOWNLOAD_BYTES
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, atomic_output(dest, "wb") as out:
                announced = response.headers.get("Content-Length")
                if announced is not None and announced.isdigit() and int(announced) > limit:
                    raise _ChecksumMismatch(f"the mirror announces {announced} bytes, the file has {limit}")
                received = 0
                for block in iter(lambda: response.read(1 << 20), b""):
                    received += len(block)
                    if received > limit:  # stop at the published size: the rest is not the file
                        raise _ChecksumMismatch(f"more than the {limit} bytes of the file; stopped there")
                    digest.update(block)
                    out.write(block)
                if digest.hexdigest() != remote.md5:
                    raise _ChecksumMismatch(f"md5 {digest.hexdigest()}, expected {remote.md5}")
            return dest
        except _ChecksumMismatch as err:
            errors.append(f"{url}: checksum mismatch ({err})")
        except urllib.error.HTTPError as err:
            errors.append(f"{url}: HTTP {err.code} {err.reason}")
        except urllib.error.URLError as err:
            errors.append(f"{url}: {err.reason}")
        except (OSError, http.client.HTTPException, StoreError) as err:
            errors.append(f"{url}: {type(err).__name__} {err}")
    raise DataError(f"--download: could not fetch {remote.name} ({'; '.join(errors) or 'no mirror'}); "
                      f"no file was written; copy it by hand into {folder}")


def fetch_fileset(fileset: FileSet, data_dir: str | None = None, *, log=None) -> Path:
    """Download every file of ``fileset`` into ``download_root(data_dir)/install_folder``
    (then unpack it if the data set comes as an archive); return that folder."""
    folder = download_root(data_dir) / fileset.install_folder
    made = [f for f in (folder, *folder.parents) if not f.exists()]  # removed again if the download fails
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"--download: cannot create {folder} ({err.strerror}); choose another --data-dir") from None
    mirrors = mirrors_of(fileset)
    fetched = []
    try:
        for remote in fileset.downloads:
            if not (folder / remote.name).exists():
                fetched.append(folder / remote.name)
            fetch_file(remote, folder, mirrors, log=log)
        if fileset.unpack is not None:
            fileset.unpack(folder)
    except BaseException:
        if made:  # this call made the install folder: leave nothing of it behind
            for path in fetched:
                path.unlink(missing_ok=True)
        for f in made:  # deepest first; a folder that holds anything (another file) is kept
            try:
                f.rmdir()
            except OSError:
                break
        raise
    return folder
