"""scikit-learn's bundled 8x8 handwritten digits (1797 samples, no download)."""

from __future__ import annotations

import numpy as np

from .base import Dataset, select_and_encode
from .preprocess import image_side, resize_nearest


def load_digits_dataset(*, n: int | None, dim: int | None, K: int) -> Dataset:
    """Digits scaled to [0, 1], resized to sqrt(dim) x sqrt(dim) if ``dim != 64``."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images / 16.0
    if dim is not None and dim != 64:
        images = resize_nearest(images, image_side(dim))
    X = images.reshape(images.shape[0], -1)
    return select_and_encode(X, bunch.target, n=n, K=K, name="digits", source="scikit-learn (bundled)")
