"""The data contract every source fulfils, and the preprocessing they share.

A source returns raw samples ``(X, labels)``; :func:`select_and_encode` then keeps
the samples the paper kept (the first ``K`` classes, or the first two with ±1
targets when ``K == 1``), the first ``n`` of them in file order, and builds the
targets. Everything is float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import ConfigError


@dataclass(frozen=True)
class Dataset:
    """Inputs ``X`` (n, d), targets ``Y`` (n, K) and integer ``labels`` (n,)."""

    X: np.ndarray
    Y: np.ndarray
    labels: np.ndarray
    name: str
    source: str

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    @property
    def d(self) -> int:
        return int(self.X.shape[1])

    @property
    def K(self) -> int:
        return int(self.Y.shape[1])


def encode_targets(labels: np.ndarray, K: int) -> np.ndarray:
    """One-hot targets for ``K >= 2``; for ``K == 1`` class 0 -> +1, class 1 -> -1."""
    labels = np.asarray(labels)
    if K == 1:
        return np.where(labels == 0, 1.0, -1.0).reshape(-1, 1)
    Y = np.zeros((labels.shape[0], K))
    Y[np.arange(labels.shape[0]), labels] = 1.0
    return Y


def select_and_encode(X, labels, *, n: int | None, K: int, name: str, source: str) -> Dataset:
    """Keep the first ``K`` classes (two when ``K == 1``), then the first ``n`` samples."""
    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    n_classes = 2 if K == 1 else K
    present = np.unique(labels)
    if n_classes > present.size:
        raise ConfigError(
            f"--K {K}: the data set {name!r} has only {present.size} classes; use --K <= {present.size}"
        )
    keep = labels < n_classes
    X, labels = X[keep], labels[keep]
    if n is None:
        n = X.shape[0]
    if n > X.shape[0]:
        raise ConfigError(
            f"--n {n}: the data set {name!r} has only {X.shape[0]} samples of the first {n_classes} classes; "
            f"use --n <= {X.shape[0]}"
        )
    X, labels = X[:n], labels[:n]
    return Dataset(X=np.ascontiguousarray(X), Y=encode_targets(labels, K), labels=labels, name=name, source=source)
