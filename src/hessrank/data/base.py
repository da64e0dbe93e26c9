"""The data contract every source fulfils, and the preprocessing they share.

A source returns raw samples ``(X, labels)``; :func:`select_and_encode` then keeps
the samples the paper kept (the first ``K`` classes, or the first two with ±1
targets when ``K == 1``), the first ``n`` of them in file order, optionally
corrupts a fraction of their labels, and builds the targets. Everything is float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError


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
        """Number of samples."""
        return int(self.X.shape[0])

    @property
    def d(self) -> int:
        """Input dimension."""
        return int(self.X.shape[1])

    @property
    def K(self) -> int:
        """Number of outputs (columns of the targets)."""
        return int(self.Y.shape[1])

    def __repr__(self) -> str:
        return f"Dataset(name={self.name!r}, n={self.n}, d={self.d}, K={self.K}, source={self.source!r})"


def encode_targets(labels: np.ndarray, K: int) -> np.ndarray:
    """Targets of integer labels: one-hot (n, K) for ``K >= 2``; for ``K == 1`` the
    column ``2·(label − ½)``: class 1 → +1, class 0 → −1 (the paper's convention)."""
    labels = np.asarray(labels)
    if K == 1:
        return np.where(labels == 1, 1.0, -1.0).reshape(-1, 1)
    Y = np.zeros((labels.shape[0], K))
    Y[np.arange(labels.shape[0]), labels] = 1.0
    return Y


def classes_kept(K: int) -> int:
    """How many classes a run with ``K`` outputs keeps: ``K``, or 2 (±1 targets) when ``K == 1``."""
    return 2 if K == 1 else K


def select_samples(labels: np.ndarray, *, n: int | None, K: int, name: str) -> np.ndarray:
    """Indices of the first ``n`` samples (file order) whose label is one of the first
    ``K`` classes (``0 … K−1``; ``0, 1`` when ``K == 1``); ``n=None`` keeps them all."""
    labels = np.asarray(labels)
    n_classes = classes_kept(K)
    present = np.unique(labels)
    if n_classes > present.size:
        # K = 1 keeps two classes (±1 targets): a remedy "K <= 1" would be refused again
        remedy = f"use --K <= {present.size}" if present.size >= 2 else "no K fits (K = 1 needs two classes)"
        raise ConfigError.invalid("K", K, f"the data set {name!r} has only {present.size} "
                                          f"class{'es' if present.size != 1 else ''}; {remedy}")
    kept = np.flatnonzero((labels >= 0) & (labels < n_classes))
    if n is None:
        return kept
    if n > kept.size:
        remedy = f"use --n <= {kept.size}" if kept.size >= 1 else "no n fits"
        raise ConfigError.invalid("n", n, f"the data set {name!r} has only {kept.size} samples of the first "
                                          f"{n_classes} classes; {remedy}")
    return kept[:n]


def corrupt_labels(labels: np.ndarray, *, fraction: float, n_classes: int, seed: int) -> np.ndarray:
    """Labels with ``round(fraction · n)`` of them, chosen at random, replaced by a
    different class drawn uniformly from the other ``n_classes − 1``.

    ``numpy.random.default_rng(seed)`` draws first the samples (without replacement),
    then an offset ``1 … n_classes−1`` per sample: new label = (label + offset) mod n_classes.
    With two classes this flips the label (the sign of a ±1 target).
    """
    labels = np.array(labels, dtype=np.int64)
    count = int(round(fraction * labels.size))
    if count == 0:
        return labels
    rng = np.random.default_rng(seed)
    which = rng.choice(labels.size, size=count, replace=False)
    offset = rng.integers(1, n_classes, size=count)
    labels[which] = (labels[which] + offset) % n_classes
    return labels


def select_and_encode(X, labels, *, n: int | None, K: int, name: str, source: str,
                      label_noise: float = 0.0, seed: int = 1) -> Dataset:
    """Keep the first ``K`` classes (two when ``K == 1``), then the first ``n`` samples;
    corrupt a fraction ``label_noise`` of their labels (see :func:`corrupt_labels`);
    encode the targets (see :func:`encode_targets`)."""
    idx = select_samples(labels, n=n, K=K, name=name)
    X = np.ascontiguousarray(np.asarray(X, dtype=np.float64)[idx])
    return encode_dataset(X, np.asarray(labels)[idx], K=K, name=name, source=source,
                          label_noise=label_noise, seed=seed)


def encode_dataset(X, labels, *, K: int, name: str, source: str, label_noise: float = 0.0,
                   seed: int = 1) -> Dataset:
    """A :class:`Dataset` of already selected samples: label noise, then targets."""
    labels = np.asarray(labels).astype(np.int64)
    if label_noise:
        labels = corrupt_labels(labels, fraction=label_noise, n_classes=classes_kept(K), seed=seed)
    return Dataset(X=np.ascontiguousarray(X, dtype=np.float64), Y=encode_targets(labels, K), labels=labels,
                   name=name, source=source)
