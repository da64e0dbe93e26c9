"""scikit-learn's bundled 8x8 handwritten digits (1797 samples, no download)."""

from __future__ import annotations

from .base import Dataset, encode_dataset, select_samples
from .preprocess import image_side, resize_images


def load_digits_dataset(*, n: int | None, dim: int | None, K: int, resize: str = "nearest",
                        label_noise: float = 0.0, seed: int = 1) -> Dataset:
    """Digits scaled to [0, 1] (pixel / 16), resized to √dim × √dim by ``resize`` if ``dim != 64``;
    the first ``n`` samples of the first ``K`` classes (see :func:`~hessrank.data.base.select_samples`)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    idx = select_samples(bunch.target, n=n, K=K, name="digits")
    images = bunch.images[idx] / 16.0
    if dim is not None and dim != 64:
        images = resize_images(images, image_side(dim), resize)
    return encode_dataset(images.reshape(idx.size, -1), bunch.target[idx], K=K, name="digits",
                          source="scikit-learn (bundled)", label_noise=label_noise, seed=seed)
