"""Data sets: sources (bundled, synthetic, files) behind one entry point.

:func:`load_dataset` turns the data fields of a :class:`~hessrank.config.RunConfig`
into a :class:`Dataset`. New sources register a loader in ``_LOADERS``; data sets
stored as files also register their :class:`~hessrank.data.locate.FileSet` in
``FILESETS`` (where they are looked for, how they are fetched).

Named data sets default to ``n = 100`` samples and ``dim = 64``; a user file
(``.npz``/``.csv``) to all its rows and its own ``d``.

Internal: the stable API is ``hessrank.*``; names here may change between versions.
"""

from __future__ import annotations

from ..config import DATASETS, DEFAULT_DIM, DEFAULT_N
from ..errors import ConfigError, DataError
from .base import Dataset, encode_dataset, encode_targets, select_samples
from .cifar import CIFAR10, paper_images, read_cifar_train
from .digits import load_digits_dataset
from .download import fetch_fileset
from .idx import FASHION_MNIST, MNIST, read_idx_pair
from .locate import FileSet, describe_roots, download_root, find_folder, get_command, missing_message, search_roots
from .preprocess import image_side, resize_images, scale_pixels
from .synthetic import gaussian_mixture
from .user import is_user_file, load_user_file


def _gaussian(cfg):
    ds = gaussian_mixture(n=cfg.n, dim=cfg.dim, K=cfg.K, seed=cfg.seed)
    if not cfg.label_noise:
        return ds
    return encode_dataset(ds.X, ds.labels, K=cfg.K, name=ds.name, source=ds.source,
                          label_noise=cfg.label_noise, seed=cfg.seed)


def _digits(cfg):
    return load_digits_dataset(n=cfg.n, dim=cfg.dim, K=cfg.K, resize=cfg.resize,
                               label_noise=cfg.label_noise, seed=cfg.seed)


def _image_loader(fileset: FileSet, read):
    """A loader for an image data set stored as files; ``read(folder)`` gives (N, H, W) uint8 images and labels."""

    def load(cfg):
        side = image_side(cfg.dim)
        found = find_folder(fileset, cfg.data_dir)
        if found is None and cfg.download:
            fetch_fileset(fileset, cfg.data_dir)
            found = find_folder(fileset, cfg.data_dir)
        if found is None:
            raise DataError(missing_message(fileset, cfg.data_dir))
        folder, origin = found
        images, labels = read(folder)
        idx = select_samples(labels, n=cfg.n, K=cfg.K, name=fileset.name)
        X = resize_images(scale_pixels(images[idx]), side, cfg.resize).reshape(idx.size, -1)
        return encode_dataset(X, labels[idx], K=cfg.K, name=fileset.name, source=f"{folder}, {origin}",
                              label_noise=cfg.label_noise, seed=cfg.seed)

    load.__doc__ = f"{fileset.name}: pixels / 255, the first n samples of the first K classes, resized to √dim × √dim."
    return load


def _read_cifar_red(folder):
    images, labels = read_cifar_train(folder)
    return paper_images(images), labels


FILESETS = {fs.name: fs for fs in (MNIST, FASHION_MNIST, CIFAR10)}
_LOADERS = {
    "digits": _digits,
    "gaussian": _gaussian,
    "MNIST": _image_loader(MNIST, read_idx_pair),
    "FashionMNIST": _image_loader(FASHION_MNIST, read_idx_pair),
    "CIFAR10": _image_loader(CIFAR10, _read_cifar_red),
}


def canonical_name(name: str) -> str | None:
    """The registered name of data set ``name`` (case-insensitive, with aliases), or ``None``."""
    key = str(name).lower()
    for canon in _LOADERS:
        fs = FILESETS.get(canon)
        if key == canon.lower() or (fs is not None and key in fs.aliases):
            return canon
    return None


def availability(data_dir: str | None = None) -> list[dict]:
    """For each data set: ``name``, ``available``, ``where`` (folder and how it was found, or
    what it is) and, for a missing one, ``get``: the one command that fetches it."""
    rows = [
        {"name": "digits", "available": True, "where": "bundled with scikit-learn (1797 8×8 images)", "get": None},
        {"name": "gaussian", "available": True, "where": "generated (Gaussian mixture, any n and dim)", "get": None},
    ]
    for fs in FILESETS.values():
        found = find_folder(fs, data_dir)
        rows.append({"name": fs.name, "available": found is not None,
                     "where": f"{found[0]} ({found[1]})" if found else None,
                     "get": None if found else get_command(fs, data_dir)})
    return rows


def fetch(name: str, data_dir: str | None = None) -> tuple[str, str, bool]:
    """Download data set ``name`` unless it is already available; return its registered
    name, its folder and whether it was downloaded now."""
    canon = canonical_name(name)
    if canon not in FILESETS:
        raise ConfigError.invalid("download", name, f"not one of {', '.join(FILESETS)} (the others need no download)")
    fs = FILESETS[canon]
    found = find_folder(fs, data_dir)
    if found is not None:
        return canon, str(found[0]), False
    return canon, str(fetch_fileset(fs, data_dir)), True


def expected_shape(cfg) -> dict:
    """``{"n": …, "d": …}`` of the data ``cfg`` will load, as far as known before reading
    a file (``None``: only the file knows; a user file's defaults are its own)."""
    if is_user_file(cfg.dataset):
        return {"n": cfg.n, "d": cfg.dim}
    return {"n": DEFAULT_N if cfg.n is None else cfg.n, "d": DEFAULT_DIM if cfg.dim is None else cfg.dim}


def load_dataset(cfg) -> Dataset:
    """Load the data set named by ``cfg.dataset``, prepared as the paper did.

    Args:
        cfg: a :class:`~hessrank.RunConfig`; its data fields are used (``dataset``: ``digits``,
            ``gaussian``, ``MNIST``, ``FashionMNIST``, ``CIFAR10`` or a ``.npz``/``.csv`` file;
            ``n``, ``dim``, ``K``, ``resize``, ``label_noise``, ``seed``, ``data_dir``, ``download``).

    Returns:
        a :class:`~hessrank.Dataset`: inputs ``X`` (n, d), targets ``Y`` (n, K), labels, its source.

    Raises:
        ConfigError: an unknown data set, or a ``dim`` the file does not have.
        DataError: data files that are missing, damaged or too large.
    """
    if is_user_file(cfg.dataset):
        ds = load_user_file(cfg.dataset, n=cfg.n, K=cfg.K, label_noise=cfg.label_noise, seed=cfg.seed)
    else:
        canon = canonical_name(cfg.dataset)
        if canon is None:
            raise ConfigError.invalid("dataset", cfg.dataset, f"not one of {', '.join(DATASETS)} "
                              "or a path to a .npz or .csv file")
        cfg = cfg.replace(n=DEFAULT_N if cfg.n is None else cfg.n, dim=DEFAULT_DIM if cfg.dim is None else cfg.dim)
        ds = _LOADERS[canon](cfg)
    if cfg.dim is not None and ds.d != cfg.dim:
        raise ConfigError.invalid("dim", cfg.dim, f"the data set {cfg.dataset!r} has d = {ds.d}")
    return ds


__all__ = [
    "Dataset", "DATASETS", "availability", "describe_roots", "download_root", "expected_shape", "fetch",
    "search_roots", "load_dataset", "encode_targets",
]
