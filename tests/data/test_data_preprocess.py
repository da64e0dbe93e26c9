"""Preprocessing as the paper did it: resize rules, class selection, ±1 targets, label noise.

The pinned arrays below are computed by hand from the generated pixel values.
"""

from fractions import Fraction

import numpy as np
import pytest
from datafiles import isolate, write_cifar, write_mnist

from hessrank.config import RESIZES, RunConfig
from hessrank.data import cifar, load_dataset
from hessrank.data.base import corrupt_labels, encode_targets, select_and_encode, select_samples
from hessrank.data.preprocess import image_side, resize_images, resize_matrix
from hessrank.errors import HessrankError

# --------------------------------------------------------------------------- the paper's defaults, pinned

#: 5 images of 4×4 pixels, pixel (r, c) of image k = 16k + 4r + c; labels in file order
IMAGES = np.array([[[16 * k + 4 * r + c for c in range(4)] for r in range(4)] for k in range(5)], dtype=np.uint8)
LABELS = np.array([2, 1, 0, 3, 1])


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    isolate(monkeypatch, tmp_path)
    write_mnist(tmp_path / "d" / "MNIST" / "raw", IMAGES, LABELS)
    return str(tmp_path / "d")


def test_paper_preprocessing_K1_binary_pm1(tiny_mnist):
    # K = 1: the first two classes (labels 0, 1) -> images 1, 2, 4; the first n = 3 of them.
    # dim = 4: side 2, nearest rows/cols floor(i·4/2) = 0, 2 -> pixels (0,0), (0,2), (2,0), (2,2) = 16k + 0, 2, 8, 10.
    ds = load_dataset(RunConfig(dataset="MNIST", data_dir=tiny_mnist, n=3, dim=4, K=1))
    np.testing.assert_array_equal(ds.X, np.array([[16, 18, 24, 26], [32, 34, 40, 42], [64, 66, 72, 74]]) / 255)
    np.testing.assert_array_equal(ds.Y, [[1.0], [-1.0], [1.0]])  # labels 1, 0, 1: class 1 -> +1 (the paper's 2(y − ½))
    assert ds.X.dtype == ds.Y.dtype == np.float64


def test_paper_preprocessing_K3_one_hot_and_full_size(tiny_mnist):
    # K = 3: labels 0, 1, 2 -> images 0, 1, 2, 4 (image 3 has label 3); n = 4; dim = 16 keeps 4×4 as is.
    ds = load_dataset(RunConfig(dataset="mnist", data_dir=tiny_mnist, n=4, dim=16, K=3))
    np.testing.assert_array_equal(ds.X, IMAGES[[0, 1, 2, 4]].reshape(4, 16) / 255)
    np.testing.assert_array_equal(ds.Y, [[0, 0, 1], [0, 1, 0], [1, 0, 0], [0, 1, 0]])
    # dim = 9: side 3, floor(fl32(i · fl32(4/3))) = 0, 1, 2
    ds = load_dataset(RunConfig(dataset="MNIST", data_dir=tiny_mnist, n=1, dim=9, K=3))
    np.testing.assert_array_equal(ds.X, [[0, 1, 2, 4, 5, 6, 8, 9, 10]] / np.float64(255))


def test_paper_preprocessing_errors(tiny_mnist):
    with pytest.raises(HessrankError, match="n=5: .* only 4 samples of the first 3 classes; use --n <= 4"):
        load_dataset(RunConfig(dataset="MNIST", data_dir=tiny_mnist, n=5, dim=4, K=3))
    with pytest.raises(HessrankError, match="K=5: .* only 4 classes; use --K <= 4"):
        load_dataset(RunConfig(dataset="MNIST", data_dir=tiny_mnist, n=1, dim=4, K=5))
    with pytest.raises(HessrankError, match="dim=10: .* perfect square"):
        load_dataset(RunConfig(dataset="MNIST", data_dir=tiny_mnist, n=1, dim=10, K=3))


def test_cifar_first_channel_column_by_column(tmp_path, monkeypatch):
    # red(r, c) = (r + 2c) mod 256, green/blue 255. dim = 4: side 2, rows/cols 0 and 16.
    # The paper transposed H and W before flattening: [R(0,0), R(16,0), R(0,16), R(16,16)] = 0, 16, 32, 48.
    isolate(monkeypatch, tmp_path)
    r, c = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    image = np.concatenate([((r + 2 * c) % 256).ravel(), np.full(2048, 255)]).astype(np.uint8)
    data = [np.stack([image, image]) for _ in range(5)]
    labels = [[1, 0], [3, 1], [2, 2], [0, 0], [1, 1]]
    table = write_cifar(tmp_path / "d" / "cifar-10-batches-py", data, labels)
    monkeypatch.setattr(cifar, "OFFICIAL_MD5", table)
    ds = load_dataset(RunConfig(dataset="CIFAR10", data_dir=str(tmp_path / "d"), n=3, dim=4, K=1))
    np.testing.assert_array_equal(ds.X, np.tile([0, 16, 32, 48], (3, 1)) / 255)
    np.testing.assert_array_equal(ds.Y[:, 0], [1, -1, 1])  # labels 1, 0, 1 (batch 1, then batch 2's label 1)


# --------------------------------------------------------------------------- resize rules against references
def _nearest_exact_arithmetic(H, side):
    return [min(int(Fraction(i * H, side)), H - 1) for i in range(side)]


def test_nearest_is_floor_i_H_over_side_except_float32_rounding():
    # PyTorch computes ⌊fl32(i · fl32(H/side))⌋; it differs from exact ⌊i·H/side⌋ only where
    # i·H/side is an integer and the float32 product falls just below it.
    exceptions = []
    for H in range(1, 41):
        for side in range(1, 65):
            got = resize_matrix(H, side, "nearest").argmax(axis=1)
            for i, (g, e) in enumerate(zip(got, _nearest_exact_arithmetic(H, side))):
                if g != e:
                    assert g == e - 1 and Fraction(i * H, side).denominator == 1
                    exceptions.append((H, side, i))
    assert (28, 46, 23) in exceptions  # MNIST at dim 46² = 2116: output 23 reads input row 13, not 14
    assert len(exceptions) < 40


@pytest.mark.parametrize("method", RESIZES)
def test_resize_rows_are_weights_and_identity_at_same_size(method):
    for H, side in [(28, 8), (32, 5), (8, 8), (5, 13)]:
        A = resize_matrix(H, side, method)
        assert A.shape == (side, H) and (A >= 0).all()
        np.testing.assert_allclose(A.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(resize_matrix(7, 7, method), np.eye(7))


def test_nearest_exact_picks_pixel_centres():
    assert list(resize_matrix(28, 8, "nearest-exact").argmax(axis=1)) == [1, 5, 8, 12, 15, 19, 22, 26]
    assert list(resize_matrix(28, 8, "nearest").argmax(axis=1)) == [0, 3, 7, 10, 14, 17, 21, 24]


def test_area_is_the_block_mean():
    images = np.random.default_rng(1).random((3, 28, 28))
    got = resize_images(images, 8, "area")
    for k in range(3):
        for i in range(8):
            for j in range(8):
                r0, r1 = (i * 28) // 8, -((-(i + 1) * 28) // 8)
                c0, c1 = (j * 28) // 8, -((-(j + 1) * 28) // 8)
                assert got[k, i, j] == pytest.approx(images[k, r0:r1, c0:c1].mean(), rel=1e-13)


def test_bilinear_reproduces_a_linear_ramp():
    # f(r, c) = 3r − 2c + 1 is linear, so bilinear interpolation returns f at the source coordinates
    H, side = 28, 11
    r, c = np.meshgrid(np.arange(H), np.arange(H), indexing="ij")
    got = resize_images((3 * r - 2 * c + 1.0)[None], side, "bilinear")[0]
    coord = np.clip((np.arange(side) + 0.5) * H / side - 0.5, 0, H - 1)
    np.testing.assert_allclose(got, 3 * coord[:, None] - 2 * coord[None, :] + 1, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", RESIZES)
def test_resize_images_equals_matrix_products(method):
    images = np.random.default_rng(2).integers(0, 256, (4, 32, 32)).astype(np.uint8)
    A = resize_matrix(32, 6, method)
    ref = np.stack([A @ img.astype(float) @ A.T for img in images])
    np.testing.assert_allclose(resize_images(images, 6, method), ref, rtol=0, atol=1e-12)


def test_image_side():
    assert [image_side(d) for d in (1, 16, 64, 784)] == [1, 4, 8, 28]
    for bad in (0, 2, 63):
        with pytest.raises(HessrankError, match=f"dim={bad!r}: .*perfect square"):
            image_side(bad)


def test_resize_option_reaches_the_loader(tiny_mnist):
    # area 4 -> 2 averages 2×2 blocks: image 1 block (0,0) = mean(16, 17, 20, 21) = 18.5
    ds = load_dataset(RunConfig(dataset="MNIST", data_dir=tiny_mnist, n=1, dim=4, K=1, resize="area"))
    np.testing.assert_allclose(ds.X[0], np.array([18.5, 20.5, 26.5, 28.5]) / 255)
    with pytest.raises(HessrankError, match="resize='cubic': not one of nearest, nearest-exact, bilinear, area"):
        RunConfig(resize="cubic").validate()


# --------------------------------------------------------------------------- selection and noise
def test_select_samples_reference():
    labels = np.array([5, 0, 2, 1, 0, 3, 1, 2])
    assert list(select_samples(labels, n=None, K=3, name="t")) == [i for i, v in enumerate(labels) if v < 3]
    assert list(select_samples(labels, n=2, K=1, name="t")) == [1, 3]
    X = np.arange(16.0).reshape(8, 2)
    ds = select_and_encode(X, labels, n=3, K=3, name="t", source="s")
    np.testing.assert_array_equal(ds.X, [[2, 3], [4, 5], [6, 7]])  # samples 1, 2, 3 (labels 0, 2, 1)
    np.testing.assert_array_equal(ds.Y, [[1, 0, 0], [0, 0, 1], [0, 1, 0]])


def test_encode_targets():
    np.testing.assert_array_equal(encode_targets(np.array([1, 0, 1]), 1), [[1.0], [-1.0], [1.0]])
    np.testing.assert_array_equal(encode_targets(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])


@pytest.mark.parametrize("n_classes", [2, 3, 10])
@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.37, 1.0])
def test_label_noise_changes_exactly_the_fraction(n_classes, fraction):
    labels = np.arange(200) % n_classes
    noisy = corrupt_labels(labels, fraction=fraction, n_classes=n_classes, seed=7)
    changed = noisy != labels
    assert changed.sum() == round(fraction * 200)
    assert ((noisy >= 0) & (noisy < n_classes)).all()
    np.testing.assert_array_equal(noisy, corrupt_labels(labels, fraction=fraction, n_classes=n_classes, seed=7))
    if n_classes == 2:
        np.testing.assert_array_equal(noisy[changed], 1 - labels[changed])


def test_label_noise_through_the_config(tiny_mnist):
    clean = load_dataset(RunConfig(dataset="MNIST", data_dir=tiny_mnist, n=3, dim=4, K=1))
    noisy = load_dataset(RunConfig(dataset="MNIST", data_dir=tiny_mnist, n=3, dim=4, K=1, label_noise=1 / 3))
    np.testing.assert_array_equal(clean.X, noisy.X)
    assert (clean.Y != noisy.Y).sum() == 1
    with pytest.raises(HessrankError, match="label_noise=1.5: must be a fraction between 0 and 1"):
        RunConfig(label_noise=1.5).validate()


def test_label_noise_on_generated_data():
    clean = load_dataset(RunConfig(dataset="gaussian", n=20, dim=5, K=2))
    noisy = load_dataset(RunConfig(dataset="gaussian", n=20, dim=5, K=2, label_noise=0.25))
    np.testing.assert_array_equal(clean.X, noisy.X)
    assert (clean.labels != noisy.labels).sum() == 5
    np.testing.assert_array_equal(noisy.Y, encode_targets(noisy.labels, 2))


def test_default_run_is_unchanged():
    ds = load_dataset(RunConfig())
    assert (ds.name, ds.n, ds.d, ds.K) == ("digits", 100, 64, 10)
    from sklearn.datasets import load_digits
    np.testing.assert_array_equal(ds.X, load_digits().images[:100].reshape(100, 64) / 16)
