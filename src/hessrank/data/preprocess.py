"""Image preprocessing shared by the image sources: pixel scaling and resizing.

Every resize rule maps an input axis of length ``H`` to an output axis of
length ``side``; a square image is resized by applying the rule to rows and
columns. The rules follow ``torch.nn.functional.interpolate`` (the paper
resized with it, default mode ``"nearest"``):

* ``nearest`` — output pixel ``i`` copies input pixel
  ``min(⌊fl32(i · fl32(H / side))⌋, H − 1)``, the product and quotient rounded to
  float32 as PyTorch computes them (identity when ``side == H``, ``i >> 1`` when
  ``side == 2H``). In exact arithmetic this is ``⌊i · H / side⌋``; the float32
  rounding differs from it only in rare cases (28 → 46: output 23 reads input 13,
  not 14) and we reproduce it so that vectors equal the paper's.
* ``nearest-exact`` — pixel centres: ``min(⌊fl32((i + ½) · fl32(H / side))⌋, H − 1)``.
* ``bilinear`` — half-pixel centres (``align_corners=False``, no antialiasing):
  source coordinate ``c = max((i + ½) · H / side − ½, 0)``, weights ``1 − t`` and
  ``t = c − ⌊c⌋`` on pixels ``⌊c⌋`` and ``min(⌊c⌋ + 1, H − 1)``.
* ``area`` — mean over input pixels ``⌊i·H/side⌋ … ⌈(i+1)·H/side⌉ − 1``
  (adaptive average pooling).
"""

from __future__ import annotations

import math

import numpy as np

from ..config import RESIZES
from ..errors import ConfigError


def image_side(dim: int) -> int:
    """Side length of a square image with ``dim`` pixels; refuse a non-square ``dim``."""
    side = math.isqrt(int(dim))
    if side * side != dim or side < 1:
        raise ConfigError.invalid("dim", dim, "images are resized to sqrt(dim) x sqrt(dim), so dim must be a "
                                              "perfect square (e.g. 16, 64, 144)")
    return side


def scale_pixels(images: np.ndarray) -> np.ndarray:
    """8-bit pixels ``0 … 255`` as float64 in ``[0, 1]`` (``p / 255``)."""
    return np.asarray(images, dtype=np.float64) / 255.0


def _nearest_source_index(H: int, side: int, *, offset: float) -> np.ndarray:
    """PyTorch's float32 nearest rule ``min(⌊fl32((i + offset) · fl32(H/side))⌋, H − 1)``."""
    i = np.arange(side)
    if offset == 0.0 and side == H:
        return i
    if offset == 0.0 and side == 2 * H:
        return i >> 1
    scale = np.float32(H) / np.float32(side)
    pos = (i.astype(np.float32) + np.float32(offset)) * scale  # float32 arithmetic, as in ATen
    return np.minimum(np.floor(pos).astype(np.int64), H - 1)


def resize_matrix(H: int, side: int, method: str = "nearest") -> np.ndarray:
    """The (side × H) matrix ``A`` of one axis: resized axis = ``A @`` input axis.

    Each row holds non-negative weights summing to one (see the module docstring).
    """
    A = np.zeros((side, H))
    rows = np.arange(side)
    if method in ("nearest", "nearest-exact"):
        A[rows, _nearest_source_index(H, side, offset=0.0 if method == "nearest" else 0.5)] = 1.0
    elif method == "bilinear":
        c = np.maximum((rows + 0.5) * (H / side) - 0.5, 0.0)
        lo = np.minimum(np.floor(c).astype(np.int64), H - 1)
        hi = np.minimum(lo + 1, H - 1)
        t = c - lo
        np.add.at(A, (rows, lo), 1.0 - t)
        np.add.at(A, (rows, hi), t)
    elif method == "area":
        start = (rows * H) // side
        stop = -((-(rows + 1) * H) // side)  # ceil((i + 1) H / side)
        for i in rows:
            A[i, start[i]:stop[i]] = 1.0 / (stop[i] - start[i])
    else:
        raise ConfigError.invalid("resize", method, f"not one of {', '.join(RESIZES)}")
    return A


def resize_images(images: np.ndarray, side: int, method: str = "nearest") -> np.ndarray:
    """Resize (N, H, W) images to (N, side, side) float64 by ``method``.

    ``out[k] = A_H @ images[k] @ A_Wᵀ`` with the axis matrices of
    :func:`resize_matrix`; nearest rules pick pixels by index (exact copies).
    """
    images = np.asarray(images)
    H, W = images.shape[1:3]
    if method in ("nearest", "nearest-exact"):
        offset = 0.0 if method == "nearest" else 0.5
        rows = _nearest_source_index(H, side, offset=offset)
        cols = _nearest_source_index(W, side, offset=offset)
        return np.asarray(images[:, rows][:, :, cols], dtype=np.float64)
    A_H, A_W = resize_matrix(H, side, method), resize_matrix(W, side, method)
    return np.einsum("ih,nhw,jw->nij", A_H, np.asarray(images, dtype=np.float64), A_W, optimize=True)
