"""Readers on generated files: IDX (raw, gz), CIFAR-10 pickles, .npz, .csv — good and broken ones."""

import gzip
import os
import pickle

import numpy as np
import pytest
from datafiles import cifar_batch_bytes, idx_bytes, isolate, write_cifar, write_idx, write_mnist

from hessrank.data import cifar, locate
from hessrank.data.cifar import read_cifar_batch, read_cifar_train
from hessrank.data.idx import FASHION_MNIST, MNIST, read_idx, read_idx_pair
from hessrank.data.user import load_user_file
from hessrank.errors import HessrankError

RNG = np.random.default_rng(0)


# --------------------------------------------------------------------------- IDX
@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("shape", [(7,), (5, 4, 3)])
def test_idx_round_trip(tmp_path, gz, shape):
    a = RNG.integers(0, 256, size=shape, dtype=np.uint8)
    path = write_idx(tmp_path / ("f.gz" if gz else "f"), a, gz=gz)
    got = read_idx(path)
    assert got.dtype == np.uint8 and got.shape == shape
    np.testing.assert_array_equal(got, a)


def test_idx_other_type_codes(tmp_path):
    # int32 big-endian, written by hand: 0 0 0x0C 1 | 3 | values
    raw = bytes([0, 0, 0x0C, 1]) + (3).to_bytes(4, "big") + np.array([-1, 7, 2**31 - 1], dtype=">i4").tobytes()
    (tmp_path / "i").write_bytes(raw)
    np.testing.assert_array_equal(read_idx(tmp_path / "i"), [-1, 7, 2**31 - 1])


@pytest.mark.parametrize("mutate,needle", [
    (lambda b: b"\x08\x03" + b[2:], "bad magic"),
    (lambda b: b[:2] + b"\x42" + b[3:], "type code 0x42"),
    (lambda b: b[:-5], "truncated"),
    (lambda b: b + b"\x00", "trailing bytes"),
    (lambda b: b[:6], "truncated IDX header"),
    (lambda b: b"", "bad magic"),
])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_corrupt_raises_one_line(tmp_path, mutate, needle, gz):
    data = mutate(idx_bytes(RNG.integers(0, 256, size=(3, 4, 4))))
    path = tmp_path / ("f.gz" if gz else "f")
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(HessrankError, match=needle) as info:
        read_idx(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_gzip_truncated_or_bad_crc(tmp_path):
    good = gzip.compress(idx_bytes(RNG.integers(0, 256, size=(20, 8, 8))))
    (tmp_path / "cut.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(HessrankError, match="corrupt or truncated gzip"):
        read_idx(tmp_path / "cut.gz")
    bad = bytearray(good)
    bad[-8] ^= 0xFF  # CRC-32 in the gzip trailer
    (tmp_path / "crc.gz").write_bytes(bytes(bad))
    with pytest.raises(HessrankError, match="CRC"):
        read_idx(tmp_path / "crc.gz")


def test_idx_pair_checks_counts_and_finds_names(tmp_path):
    images = RNG.integers(0, 256, size=(6, 5, 5), dtype=np.uint8)
    write_idx(tmp_path / "a" / "train-images.idx3-ubyte", images, gz=False)  # dotted name of some unzip tools
    write_idx(tmp_path / "a" / "train-labels.idx1-ubyte", np.arange(6), gz=False)
    got_images, got_labels = read_idx_pair(tmp_path / "a")
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, np.arange(6))
    write_mnist(tmp_path / "b", images, np.arange(5))
    with pytest.raises(HessrankError, match="expected 6 labels"):
        read_idx_pair(tmp_path / "b")


# --------------------------------------------------------------------------- where files are found
def test_search_order_data_dir_then_env_then_defaults(tmp_path, monkeypatch):
    isolate(monkeypatch, tmp_path)
    img, lab = np.zeros((2, 4, 4), np.uint8), np.array([0, 1])
    debian = write_mnist(tmp_path / "usr-share-datasets" / "fashion-mnist", img, lab)
    assert locate.find_folder(FASHION_MNIST) == (debian, locate.DEFAULT_ORIGIN)
    assert locate.find_folder(MNIST) is None  # Debian's fashion-mnist folder is not MNIST
    cache = write_mnist(tmp_path / "cache" / "hessrank" / "FashionMNIST" / "raw", img, lab, gz=False)
    assert locate.find_folder(FASHION_MNIST) == (cache, locate.DEFAULT_ORIGIN)
    cwd_data = write_mnist(tmp_path / "cwd" / "data" / "FashionMNIST", img, lab)
    assert locate.find_folder(FASHION_MNIST)[0] == cwd_data
    env = write_mnist(tmp_path / "env" / "fashion-mnist", img, lab)
    monkeypatch.setenv("HESSRANK_DATA", str(tmp_path / "env"))
    assert locate.find_folder(FASHION_MNIST) == (env, "$HESSRANK_DATA")
    flat = write_mnist(tmp_path / "flat", img, lab)  # the plain four-file layout
    assert locate.find_folder(FASHION_MNIST, str(flat)) == (flat, "--data-dir")
    assert locate.find_folder(FASHION_MNIST, str(tmp_path / "nowhere")) == (env, "$HESSRANK_DATA")
    assert locate.download_root(None) == tmp_path / "env"
    monkeypatch.delenv("HESSRANK_DATA")
    assert locate.download_root(None) == tmp_path / "cache" / "hessrank"


def test_missing_message_says_where_and_how(tmp_path, monkeypatch):
    isolate(monkeypatch, tmp_path)
    msg = locate.missing_message(MNIST, str(tmp_path / "mine"))
    assert "\n" not in msg
    for needle in (str(tmp_path / "mine"), "usr-share-datasets", "MNIST/raw", "hessian-rank datasets --download MNIST",
                   "train-images-idx3-ubyte[.gz]"):
        assert needle in msg, needle


# --------------------------------------------------------------------------- CIFAR-10
def _fake_cifar(n_per_batch=3):
    data = [RNG.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8) for _ in range(5)]
    labels = [RNG.integers(0, 10, size=n_per_batch) for _ in range(5)]
    return data, labels


def test_cifar_train_reads_batches_in_order(tmp_path):
    data, labels = _fake_cifar()
    table = write_cifar(tmp_path, data, labels)
    images, got_labels = read_cifar_train(tmp_path, checksums=table)
    assert images.shape == (15, 3, 32, 32) and images.dtype == np.uint8
    np.testing.assert_array_equal(images.reshape(15, -1), np.concatenate(data))
    np.testing.assert_array_equal(got_labels, np.concatenate(labels))
    # the red channel of pixel (row 1, col 2) of image 0 is byte 1*32+2 of its row
    assert images[0, 0, 1, 2] == data[0][0, 34]


def test_cifar_official_checksums_refuse_other_files(tmp_path):
    data, labels = _fake_cifar()
    write_cifar(tmp_path, data, labels)
    with pytest.raises(HessrankError, match="data_batch_1: checksum mismatch .*expected "
                                            "c99cafc152244af753f735de768cd75f"):
        read_cifar_train(tmp_path)


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch hacked",))


@pytest.mark.parametrize("payload,needle", [
    (lambda: pickle.dumps({b"data": _Evil(), b"labels": []}, protocol=2), "refusing to build"),
    (lambda: pickle.dumps({b"data": np.array([1, "a"], dtype=object), b"labels": [0]}), "Python objects"),
    (lambda: pickle.dumps([1, 2, 3]), "not a dict"),
    (lambda: pickle.dumps({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}), "uint8 array"),
    (lambda: pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}), "list of 2 integers"),
    (lambda: pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}), "no 'labels' entry"),
    (lambda: cifar_batch_bytes(np.zeros((2, 3072)), [0, 1])[:-40], "not a valid CIFAR-10 batch"),
    (lambda: b"", "not a valid CIFAR-10 batch"),
])
def test_cifar_tampered_or_broken_pickle_fails_cleanly(tmp_path, monkeypatch, payload, needle):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "data_batch_1"
    path.write_bytes(payload())
    with pytest.raises(HessrankError, match=needle) as info:
        read_cifar_batch(path, md5=None)  # checksum skipped: the unpickler itself must hold
    assert "\n" not in str(info.value)
    assert not (tmp_path / "hacked").exists()


def test_cifar_batch_checksum_is_checked_before_unpickling(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(HessrankError, match="checksum mismatch"):
        read_cifar_batch(path, md5="0" * 32)
    assert cifar.OFFICIAL_MD5["data_batch_1"] == "c99cafc152244af753f735de768cd75f"


# --------------------------------------------------------------------------- user files
def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_npz_labels_select_classes_in_file_order(tmp_path):
    X = RNG.standard_normal((8, 3))
    y = np.array([7, 3, 9, 3, 7, 9, 3, 7])  # classes: 3 -> 0, 7 -> 1, 9 -> 2
    ds = load_user_file(_npz(tmp_path / "d.npz", X=X, y=y), n=None, K=2)
    keep = [0, 1, 3, 4, 6, 7]
    np.testing.assert_array_equal(ds.X, X[keep])
    np.testing.assert_array_equal(ds.Y, np.eye(2)[[1, 0, 0, 1, 0, 1]])
    ds1 = load_user_file(tmp_path / "d.npz", n=3, K=1)  # the two smallest labels; larger label -> +1
    np.testing.assert_array_equal(ds1.X, X[[0, 1, 3]])
    np.testing.assert_array_equal(ds1.Y[:, 0], [1.0, -1.0, -1.0])
    assert ds1.source.startswith("user file ") and "sha256" in ds1.source


def test_npz_real_targets_used_as_given(tmp_path):
    X, Y = RNG.standard_normal((5, 4)), RNG.standard_normal((5, 3))
    ds = load_user_file(_npz(tmp_path / "t.npz", X=X, y=Y), n=4, K=3)
    np.testing.assert_array_equal(ds.X, X[:4])
    np.testing.assert_array_equal(ds.Y, Y[:4])
    with pytest.raises(HessrankError, match="K=10: .* 3 columns; use --K 3"):
        load_user_file(tmp_path / "t.npz", n=None, K=10)
    with pytest.raises(HessrankError, match="n=6: .* only 5 rows"):
        load_user_file(tmp_path / "t.npz", n=6, K=3)


def test_csv_with_and_without_header(tmp_path):
    X = np.round(RNG.standard_normal((4, 2)), 6)
    y = np.array([1, 0, 1, 1])
    body = "".join(",".join([*(repr(float(v)) for v in x), str(t)]) + "\n" for x, t in zip(X, y))
    (tmp_path / "h.csv").write_text("a,b,label\n" + body)
    (tmp_path / "n.csv").write_text(body)
    for name in ("h.csv", "n.csv"):
        ds = load_user_file(tmp_path / name, n=None, K=2)
        np.testing.assert_array_equal(ds.X, X)
        np.testing.assert_array_equal(ds.labels, y)


@pytest.mark.parametrize("make,needle", [
    (lambda p: _npz(p / "f.npz", X=np.array([[1.0, np.nan]]), y=np.array([0])), "X holds 1 NaN or infinite"),
    (lambda p: _npz(p / "f.npz", X=np.array([[1.0, np.inf]]), y=np.array([0])), "NaN or infinite"),
    (lambda p: _npz(p / "f.npz", X=np.ones((2, 2)), y=np.array([0.0, np.nan])), "y holds 1 NaN"),
    (lambda p: _npz(p / "f.npz", X=np.ones((2, 2)), y=np.array([0.0, 0.5])), r"labels y must be integers; "
                                                                             r"y\[1\] = 0.5"),
    (lambda p: _npz(p / "f.npz", X=np.ones((2, 2)), y=np.array(["a", "b"])), "labels y must be integers"),
    (lambda p: _npz(p / "f.npz", X=np.ones((2, 2)), Y=np.array([0, 1])), "needs arrays 'X' .* the file has X, Y"),
    (lambda p: _npz(p / "f.npz", X=np.ones(3), y=np.zeros(3)), "X must have shape"),
    (lambda p: _npz(p / "f.npz", X=np.ones((3, 2)), y=np.zeros(2)), r"y must have shape \(3,\)"),
    (lambda p: _npz(p / "f.npz", X=np.array([[1, "a"]], dtype=object), y=np.array([0])), "cannot read"),
    (lambda p: (p / "f.npz").write_bytes(b"PK\x03\x04 broken"), "not a readable .npz"),
    (lambda p: (p / "f.csv").write_text("1,2,0\n3,nan,1\n"), "NaN or infinite"),
    (lambda p: (p / "f.csv").write_text("1,2,0\n3,4,1.5\n"), "labels y must be integers"),
    (lambda p: (p / "f.csv").write_text("1,2,0\n3,4,cat\n"), "row 2, column 3: the label 'cat' is not an integer"),
    (lambda p: (p / "f.csv").write_text("1,2,0\n3,x,1\n"), "row 2, column 2: 'x' is not a number"),
    (lambda p: (p / "f.csv").write_text(""), "empty"),
    (lambda p: (p / "f.csv").write_text("a,b,c\n"), "no data rows"),
    (lambda p: (p / "f.csv").write_text("0\n1\n"), "at least one feature"),
    (lambda p: None, "no such file"),
])
def test_user_file_errors_are_one_line(tmp_path, make, needle):
    make(tmp_path)
    path = tmp_path / ("f.csv" if (tmp_path / "f.csv").exists() else "f.npz")
    with pytest.raises(HessrankError, match=needle) as info:
        load_user_file(path, n=None, K=2)
    assert "\n" not in str(info.value)
