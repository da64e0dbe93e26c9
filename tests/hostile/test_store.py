"""Damaged result stores: bad rows never mixed into results; a damaged file is one line."""

import json

import pytest

from hessrank.cli import main
from hessrank.errors import StoreError
from hessrank.store import ResultTable

SWEEP = ["sweep", "width", "--dataset", "gaussian", "--dim", "4", "--n", "10", "--K", "2", "--widths", "2,3",
         "--batch_size", "5"]


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    out = tmp_path_factory.mktemp("store")
    assert main([*SWEEP, "--out", str(out)]) == 0
    csv = next(out.rglob("*.csv"))
    return out, csv, csv.read_bytes()


@pytest.mark.parametrize("damage,line", [
    (lambda good: good + b"garbage,line,here\n", 4),                       # a garbage line appended
    (lambda good: good[:-30], 3),                                          # cut short in the last row
    (lambda good: good.replace(b"exact", b"ex\0ct", 1), 2),                # a NUL byte
    (lambda good: good + good.splitlines(keepends=True)[1], 4),            # a key stored twice
    (lambda good: good.replace(b",exact,", b",exact,,", 1), 2),            # one field too many
    (lambda good: good.replace(b"\n2,", b"\n2.5,", 1), 2),                 # the key of the wrong type
    (lambda good: good + b"4,1,1,1,1,1,1,exact,1,1,nan,1,1,1,1,1,1,dense\n", 4),   # NaN tolerance
    (lambda good: good + "4,\u00e9\n".encode("latin-1"), 4),               # not UTF-8
])
def test_damaged_rows_are_set_aside_recomputed_and_reported(stored, tmp_path, capsys, damage, line):
    out, csv, good = stored
    damaged = damage(good)
    mine = tmp_path / csv.relative_to(out)
    mine.parent.mkdir(parents=True)
    mine.write_bytes(damaged)
    mine.with_suffix(".json").write_bytes(csv.with_suffix(".json").read_bytes())
    with pytest.raises(StoreError, match=f"line {line}"):   # read as a plot reads it: refused, file and line
        ResultTable(mine.parent, mine.stem, json.loads(mine.with_suffix(".json").read_text())["columns"]).read_rows()
    assert main([*SWEEP, "--out", str(tmp_path)]) == 0
    out_text = capsys.readouterr().out
    assert f"line {line}" in out_text and "set aside" in out_text
    assert _same_rows(mine.read_bytes(), good)
    side = mine.with_name(mine.stem + ".rejected.txt")
    assert side.is_file() and f"line {line}" in side.read_text()
    assert not list(mine.parent.glob("*.lock"))


def _same_rows(a: bytes, b: bytes) -> bool:
    """The same points with the same ranks (seconds differ between runs)."""
    def ranks(data):
        return sorted(tuple(line.split(b",")[:10]) for line in data.splitlines()[1:])
    return ranks(a) == ranks(b)


@pytest.mark.parametrize("meta", [b"[]", b"\"text\"", b"{\"sessions\": 3}", b"\xff\xfe", b"{"])
def test_a_json_that_is_not_a_result_is_one_line(stored, tmp_path, capsys, meta):
    out, csv, good = stored
    mine = tmp_path / csv.relative_to(out)
    mine.parent.mkdir(parents=True)
    mine.write_bytes(good)
    mine.with_suffix(".json").write_bytes(meta)
    assert main([*SWEEP, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out" in err and "Traceback" not in err


def test_a_lock_that_is_a_folder_is_one_line(stored, tmp_path, capsys):
    out, csv, good = stored
    mine = tmp_path / csv.relative_to(out)
    mine.parent.mkdir(parents=True)
    mine.with_suffix(".lock").mkdir()
    assert main([*SWEEP, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lock" in err
