"""Grids with a failing point or a wrong scheduler; a mirror that streams too much."""

import http.server
import threading
import time

import pytest

from hessrank.cli import main
from hessrank.data.download import fetch_file
from hessrank.data.locate import RemoteFile
from hessrank.errors import DataError


class _Endless(http.server.BaseHTTPRequestHandler):
    """Answers every request with an endless body (a hostile mirror, or not Dask at all)."""

    def do_GET(self):  # noqa: N802 - the http.server API
        self.send_response(200)
        self.end_headers()
        try:
            for _ in range(10_000):
                self.wfile.write(b"x" * 4096)
        except OSError:
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def endless_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Endless)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_download_stops_at_the_published_size(endless_server, tmp_path):
    remote = RemoteFile("f.gz", "0" * 32, size=100_000)
    with pytest.raises(DataError, match="100000 bytes"):
        fetch_file(remote, tmp_path, [f"http://{endless_server}/"])
    assert list(tmp_path.iterdir()) == []


def test_a_scheduler_that_is_not_dask_fails_fast_and_writes_nothing(endless_server, tmp_path, capsys):
    grid = tmp_path / "g.toml"
    grid.write_text('[grid]\ndataset = "gaussian"\nn = 4\ndim = 3\nK = 2\nunits = ["2"]\nseed = [1, 2]\n')
    start = time.monotonic()
    assert main(["grid", str(grid), "--scheduler", f"tcp://{endless_server}", "--out", str(tmp_path / "out")]) == 2
    assert time.monotonic() - start < 30
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--scheduler" in err
    assert not (tmp_path / "out").exists()


def test_a_point_with_unreadable_data_is_a_failed_row_and_the_grid_goes_on(tmp_path, capsys):
    (tmp_path / "bad.npz").write_bytes(b"not a zip file")
    grid = tmp_path / "f.toml"
    grid.write_text(f'[grid]\ndataset = ["gaussian", "{tmp_path / "bad.npz"}"]\nK = 2\nunits = ["2"]\n')
    assert main(["grid", str(grid), "--workers", "1", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "1 done" in out and "1 failed" in out
    folder = tmp_path / "out" / "store" / "grid" / "f"
    assert not list(folder.glob("*.lock")) and len(list(folder.glob("*.csv"))) == 1
