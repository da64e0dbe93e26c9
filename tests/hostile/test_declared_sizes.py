"""Files whose headers claim more data than they hold are refused before anything that size is read."""

import gzip
import io
import struct
import zipfile

import numpy as np
import pytest
from datafiles import idx_bytes

from hessrank.data.idx import read_idx
from hessrank.data.user import load_user_file, read_npz
from hessrank.errors import DataError


def _lying_idx(shape) -> bytes:
    small = idx_bytes(np.zeros((2, 2, 2), dtype=np.uint8))
    return small[:4] + struct.pack(">3I", *shape) + small[16:]


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("shape,needle", [((60000, 28, 28), "truncated"), ((2**31, 2**31, 2), "more than"),
                                          ((3, 2, 2), "truncated"), ((1, 2, 2), "trailing bytes")])
def test_an_idx_header_that_disagrees_with_the_file_is_refused_in_one_line(tmp_path, gz, shape, needle):
    data = _lying_idx(shape)
    path = tmp_path / ("f.gz" if gz else "f")
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(DataError, match=needle) as err:
        read_idx(path)
    assert "\n" not in str(err.value)


def test_a_gzip_idx_is_unpacked_only_as_far_as_its_header_declares(tmp_path, monkeypatch):
    from hessrank.data import idx

    data = _lying_idx((1, 2, 2)) + bytes(10**6)  # a header for 4 values, then a megabyte more
    path = tmp_path / "f.gz"
    path.write_bytes(gzip.compress(data))
    seen = []
    real = idx.parse_idx
    monkeypatch.setattr(idx, "parse_idx", lambda b, **kw: seen.append(len(b)) or real(b, **kw))
    with pytest.raises(DataError, match="trailing bytes"):
        read_idx(path)
    assert seen == [4 + 12 + 4 + 1]


def test_a_truthful_idx_file_still_reads(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    for gz in (False, True):
        path = tmp_path / f"ok{gz}"
        path.write_bytes(gzip.compress(idx_bytes(array)) if gz else idx_bytes(array))
        assert np.array_equal(read_idx(path), array)


def _npz_with_header(tmp_path, claimed: str):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ones((5, 3)))
    x = buf.getvalue().replace(b"(5, 3)", claimed.encode())
    ybuf = io.BytesIO()
    np.lib.format.write_array(ybuf, np.arange(5))
    path = tmp_path / "x.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("X.npy", x)
        zf.writestr("y.npy", ybuf.getvalue())
    return path


@pytest.mark.parametrize("claimed", ["(500000000, 3000)", "(6, 3)", "(4, 3)"])
def test_an_npz_member_claiming_other_data_is_refused_before_reading(tmp_path, claimed):
    path = _npz_with_header(tmp_path, claimed)
    with pytest.raises(DataError, match="claims shape"):
        read_npz(path)
    with pytest.raises(DataError):
        load_user_file(path, n=None, K=3)
