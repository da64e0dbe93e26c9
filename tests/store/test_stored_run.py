"""The runner shared by sweeps, training and grids: missing points, storing, progress, completeness."""

import json
from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from hessrank.store import ResultTable, StoredOutcome, stored_run


@dataclass(kw_only=True)
class _Outcome(StoredOutcome):
    label: str = ""


class _Bar:
    def __init__(self, total):
        self.total, self.events = total, []

    def begin(self, label):
        self.events.append(("begin", label))

    def end(self, label, message):
        self.events.append(("end", label, message))

    def close(self):
        self.events.append(("close",))


def _blocks(rank):
    ranks = {m: SimpleNamespace(rank=rank, tol=1e-12, gap_decades=None) for m in ("H_L", "H_o", "H_F")}
    return {"layer1": SimpleNamespace(size=4, ranks=ranks)}


def _run(table, wanted, measure, *, done=lambda row: row.get("status") == "done", blocks=True, bars=None):
    def progress(total):
        bars.append(_Bar(total))
        return bars[-1]

    with stored_run(table, {"what": "test"}, describe={"task": "test"}, key=lambda row: int(row["k"]), wanted=wanted,
                    provenance={}, outcome=lambda **common: _Outcome(label="x", **common), done=done,
                    block_column="k" if blocks else None, progress=progress if bars is not None else None) as job:
        for k in job.missing:
            job.begin(f"k={k}")
            status = measure(k)
            job.store(k, {"k": str(k), "status": status}, blocks=_blocks(k))
            job.end(f"k={k}", status)
    return job


def test_missing_points_are_measured_once_and_completeness_recorded(tmp_path):
    table = ResultTable(tmp_path, "t", ("k", "status"))
    bars = []

    def fail_at_3(k):
        if k == 3:
            raise RuntimeError("killed")
        return "failed" if k == 2 else "done"

    with pytest.raises(RuntimeError):
        _run(table, [1, 2, 3, 4], fail_at_3, bars=bars)
    assert [r["k"] for r in table.read_rows()] == ["1", "2"]                 # stored as measured
    assert bars[0].total == 4 and bars[0].events[-1] == ("close",)          # closed even by the error
    meta = json.loads(table.json_path.read_text())
    assert meta["complete"] is False and meta["sessions"][-1]["computed"] == [1, 2]

    seen = []
    job = _run(table, [1, 2, 3, 4], lambda k: seen.append(k) or "done", bars=bars)
    assert seen == [2, 3, 4]                       # 1 was done; 2 failed: measured again; 3, 4 were missing
    assert job.outcome.computed == [2, 3, 4] and job.outcome.stored_before == 1 and job.outcome.label == "x"
    assert [r["k"] for r in job.outcome.rows] == ["1", "2", "3", "4"]
    assert json.loads(table.json_path.read_text())["complete"] is True
    assert ("end", "k=4", "done") in bars[-1].events

    (tmp_path / "t_blocks.csv").unlink()           # the blocks of every point lost: all measured again
    seen.clear()
    _run(table, [1, 2, 3, 4], lambda k: seen.append(k) or "done")
    assert seen == [1, 2, 3, 4]
    seen.clear()
    assert _run(table, [1, 2, 3, 4], lambda k: seen.append(k) or "done").missing == [] and seen == []
    assert _run(table, [1, 2, 3, 4, 5], lambda k: "done", blocks=False).missing == [5]   # no side table asked
