"""`gpubp bench --json PATH` whose write fails after the measuring (a full disk; a read-only mount,
which root's access check passes). Was: "gpubp bench: error: OSError: No space left on device",
naming neither --json nor the path, and the JSON (device, versions, every figure) was lost; now
the error names both and the JSON is printed, so the minutes of measuring are kept."""
import errno
import json
import os

from helpers import run_cli as run

RESULT = {"device": "cpu", "figures": [1.5, 2.5]}


def test_results_are_printed_when_the_json_cannot_be_written(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("gpubp.bench.run", lambda *a, **k: dict(RESULT))
    monkeypatch.setattr("gpubp.bench.table", lambda result: "the table")

    def full(path, write, by_name=False):  # as write_atomically fails: its temp file named
        raise OSError(errno.ENOSPC, "No space left on device", os.path.join(os.path.dirname(path), ".gpubp-h-1-0a0b0c0d.tmp"))
    monkeypatch.setattr("gpubp.bench.write_atomically", full)
    path = tmp_path / "bench.json"
    code, out, last = run(["bench", "--device", "cpu", "--json", str(path)], capsys)
    assert code == 1 and not path.exists()
    assert f"--json {path}: cannot write the results (OSError: No space left on device)" in last, last
    assert "the JSON is printed above" in last
    assert json.loads(out.split("the table\n", 1)[1]) == RESULT
