"""Synthetic data: a Gaussian mixture with one random centre per class."""

from __future__ import annotations

import numpy as np

from .base import Dataset, encode_targets


def gaussian_mixture(*, n: int, dim: int, K: int, seed: int) -> Dataset:
    """``n`` points in R^dim around one random centre per class.

    Labels cycle through the ``max(K, 2)`` classes in a random order (balanced);
    each point is its centre plus Gaussian noise, so the covariance has
    rank ``min(n, dim)``. Targets: one-hot for ``K >= 2``, ±1 for ``K == 1``.
    """
    rng = np.random.default_rng(seed)
    n_classes = max(K, 2)
    # centres and noise ~ N(0, I/dim): E|x|² = 2 whatever dim, so network outputs
    # stay O(1) and saturating losses (cosh, cross) keep their curvature
    centres = rng.standard_normal((n_classes, dim)) / np.sqrt(dim)
    labels = rng.permutation(np.arange(n) % n_classes)
    X = centres[labels] + rng.standard_normal((n, dim)) / np.sqrt(dim)
    return Dataset(X=X, Y=encode_targets(labels, K), labels=labels, name="gaussian",
                   source=f"synthetic Gaussian mixture (seed {seed})")
