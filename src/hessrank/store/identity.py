"""Where a stored result lives and what it is: folders, the identity of a configuration, its hash."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..atomicio import check_real_folders
from ..errors import StoreError

#: settings that do not change a number (where the data files live, whether to fetch them) stay out of the hash
IDENTITY_EXCLUDED = ("data_dir", "download")


def architecture_name(d: int, units, K: int) -> str:
    """``64x10x10x10`` for d = 64, hidden widths 10, 10 and K = 10 (the paper's folder name)."""
    return "x".join(str(int(w)) for w in (d, *units, K))


def store_folder(out, task: str, loss: str, dataset: str, *parts) -> Path:
    """``<out>/store/<task>/<loss>/<dataset>/<parts…>``; a data set given as a file path
    contributes its file name only."""
    name = Path(str(dataset)).name or str(dataset)
    names = [task, loss, name, *map(str, parts)]
    for part in names:  # every name becomes one folder below <out>/store, never a way out of it
        if part in ("", ".", "..") or any(c in part for c in "/\\\0"):
            raise StoreError.about("out", f"{part!r} cannot name a folder of the result store")
    folder = Path(out, "store", *names)
    check_real_folders(folder, root=Path(out))
    return folder


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
