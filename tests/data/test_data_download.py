"""--download against a loopback HTTP server serving generated files (never the internet)."""

import dataclasses
import functools
import hashlib
import http.server
import socket
import threading

import numpy as np
import pytest
from datafiles import cifar_batch_bytes, cifar_tarball, isolate, md5, write_mnist

from hessrank.cli import main
from hessrank.config import RunConfig
from hessrank.data import load_dataset
from hessrank.data.cifar import CIFAR10, read_cifar_train, unpack_archive
from hessrank.data.download import fetch_file, fetch_fileset
from hessrank.data.idx import MNIST
from hessrank.data.locate import RemoteFile
from hessrank.errors import HessrankError

RNG = np.random.default_rng(3)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """(folder served, its base URL) on 127.0.0.1 at an ephemeral port."""
    isolate(monkeypatch, tmp_path)
    www = tmp_path / "www"
    www.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/"


def _generated_mnist(www):
    images = RNG.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    labels = np.arange(12) % 10
    write_mnist(www / "mirror2", images, labels)
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
    fileset = dataclasses.replace(MNIST, downloads=tuple(RemoteFile(n, md5(www / "mirror2" / n)) for n in names))
    return images, labels, fileset


def test_download_tries_mirrors_in_order_then_loads(server, tmp_path, monkeypatch, capsys):
    www, url = server
    images, labels, fileset = _generated_mnist(www)
    (www / "mirror1").mkdir()  # answers 404
    monkeypatch.setenv("HESSRANK_MIRROR", f"{_closed_port_url()} {url}/mirror1/, {url}/mirror2/")
    folder = fetch_fileset(fileset, str(tmp_path / "dl"))
    assert folder == tmp_path / "dl" / "MNIST" / "raw"
    assert sorted(p.name for p in folder.iterdir()) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    assert capsys.readouterr().err.count("downloading") == 6  # 3 mirrors × 2 files
    ds = load_dataset(RunConfig(dataset="MNIST", data_dir=str(tmp_path / "dl"), n=12, dim=784, K=10))
    np.testing.assert_array_equal(ds.X, images.reshape(12, -1) / 255)
    np.testing.assert_array_equal(ds.labels, labels)
    # present and correct: no second download (the server no longer has the files)
    for p in (www / "mirror2").iterdir():
        p.unlink()
    fetch_fileset(fileset, str(tmp_path / "dl"))


def test_checksum_mismatch_leaves_no_file(server, tmp_path, monkeypatch):
    www, url = server
    _generated_mnist(www)
    monkeypatch.setenv("HESSRANK_MIRROR", f"{url}/mirror2/")
    with pytest.raises(HessrankError, match="checksum mismatch .*expected f68b3c2dcbeaaa9fbdd348bbdeb94873") as info:
        fetch_fileset(MNIST, str(tmp_path / "dl"))  # the official checksums refuse the generated files
    assert "\n" not in str(info.value) and "no file was written" in str(info.value)
    assert not (tmp_path / "dl").exists()  # no install folder left behind


def test_unreachable_mirrors_name_each_failure(tmp_path):
    closed = _closed_port_url()
    with pytest.raises(HessrankError, match=f"could not fetch x.gz \\({closed}x.gz: .*; ftp://h/x.gz: only http"):
        fetch_file(RemoteFile("x.gz", "0" * 32), tmp_path, [closed, "ftp://h/"])
    assert list(tmp_path.iterdir()) == []


def test_cli_download_with_official_checksums_refuses_and_writes_nothing(server, tmp_path, monkeypatch, capsys):
    www, url = server
    _generated_mnist(www)
    monkeypatch.setenv("HESSRANK_MIRROR", f"{url}/mirror2/")
    dest = tmp_path / "dl"
    for argv in (["run", "--dataset", "MNIST", "--download", "--data-dir", str(dest), "--dim", "16"],
                 ["datasets", "--download", "MNIST", "--data-dir", str(dest)]):
        assert main(argv) == 2
        err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("downloading")]
        assert len(err) == 1 and "checksum mismatch" in err[0] and err[0].startswith(f"hessian-rank {argv[0]}: error:")
        assert not [p for p in dest.rglob("*") if p.is_file()]


def test_cifar_archive_download_and_unpack(server, tmp_path, monkeypatch):
    www, url = server
    data = [RNG.integers(0, 256, (2, 3072), dtype=np.uint8) for _ in range(5)]
    labels = [[i, 9 - i] for i in range(5)]
    members = {f"cifar-10-batches-py/data_batch_{i + 1}": cifar_batch_bytes(d, lab)
               for i, (d, lab) in enumerate(zip(data, labels))}
    members["../escape"] = b"outside"  # never extracted: only the expected names are read
    members["cifar-10-batches-py/readme.html"] = b"<html>"
    tar_md5 = cifar_tarball(www / "cifar-10-python.tar.gz", members)
    table = {name.split("/")[1]: hashlib.md5(raw).hexdigest() for name, raw in members.items() if "data_batch" in name}
    fileset = dataclasses.replace(CIFAR10, downloads=(RemoteFile("cifar-10-python.tar.gz", tar_md5),),
                                  unpack=functools.partial(unpack_archive, checksums=table))
    monkeypatch.setenv("HESSRANK_MIRROR", url)
    folder = fetch_fileset(fileset, str(tmp_path / "dl"))
    assert sorted(p.name for p in folder.iterdir()) == [f"data_batch_{i}" for i in range(1, 6)]
    assert not (tmp_path / "dl" / "escape").exists() and not (folder.parent / "escape").exists()
    images, got_labels = read_cifar_train(folder, checksums=table)
    np.testing.assert_array_equal(images.reshape(10, -1), np.concatenate(data))
    np.testing.assert_array_equal(got_labels, np.concatenate(labels))


def test_unpack_refuses_a_batch_with_the_wrong_checksum(tmp_path):
    members = {f"cifar-10-batches-py/data_batch_{i}": cifar_batch_bytes(np.zeros((1, 3072)), [0]) for i in range(1, 6)}
    cifar_tarball(tmp_path / "cifar-10-python.tar.gz", members)
    with pytest.raises(HessrankError, match="data_batch_1 has md5 .*expected c99cafc152244af753f735de768cd75f"):
        unpack_archive(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar-10-python.tar.gz"]
