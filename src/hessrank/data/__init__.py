"""Data sets: sources (bundled, synthetic, files) behind one entry point.

:func:`load_dataset` turns the data fields of a :class:`~hessrank.config.RunConfig`
into a :class:`Dataset`. New sources register a loader in ``_LOADERS``.
"""

from __future__ import annotations

from ..config import ConfigError
from .base import Dataset, encode_targets, select_and_encode
from .digits import load_digits_dataset
from .synthetic import gaussian_mixture


def _gaussian(cfg):
    if cfg.n is None:
        raise ConfigError("--n: the gaussian data set needs a sample size, e.g. --n 100")
    if cfg.dim is None:
        raise ConfigError("--dim: the gaussian data set needs an input dimension, e.g. --dim 64")
    return gaussian_mixture(n=cfg.n, dim=cfg.dim, K=cfg.K, seed=cfg.seed)


def _digits(cfg):
    return load_digits_dataset(n=cfg.n, dim=cfg.dim, K=cfg.K)


_LOADERS = {"gaussian": _gaussian, "digits": _digits}
DATASETS = tuple(_LOADERS)


def load_dataset(cfg) -> Dataset:
    """Load the data set named by ``cfg.dataset``, prepared as the paper did."""
    try:
        loader = _LOADERS[cfg.dataset]
    except KeyError:
        raise ConfigError(f"--dataset {cfg.dataset!r}: not one of {', '.join(DATASETS)}") from None
    ds = loader(cfg)
    if cfg.dim is not None and ds.d != cfg.dim:
        raise ConfigError(f"--dim {cfg.dim}: the data set {cfg.dataset!r} has d = {ds.d}")
    return ds


__all__ = ["Dataset", "DATASETS", "load_dataset", "encode_targets", "select_and_encode"]
