"""Image preprocessing shared by the image sources (resize, pixel scaling)."""

from __future__ import annotations

import math

import numpy as np

from ..config import ConfigError


def image_side(dim: int) -> int:
    """Side length of a square image with ``dim`` pixels; refuse a non-square ``dim``."""
    side = math.isqrt(int(dim))
    if side * side != dim or side < 1:
        raise ConfigError(f"--dim {dim}: images are resized to sqrt(dim) x sqrt(dim), so dim must be a perfect square (e.g. 16, 64, 144)")
    return side


def resize_nearest(images: np.ndarray, side: int) -> np.ndarray:
    """Nearest-neighbour resize of (N, H, W) images to (N, side, side).

    Output pixel ``i`` samples input pixel ``floor(i * H / side)``.
    """
    images = np.asarray(images)
    H, W = images.shape[1:3]
    rows = np.floor(np.arange(side) * H / side).astype(int)
    cols = np.floor(np.arange(side) * W / side).astype(int)
    return images[:, rows][:, :, cols]
