"""The one rule of gpubp's outputs (``_checks.output_path``): a file already at an output path is
replaced only when gpubp wrote it as that kind of output, or when the user says so."""
import os

import pytest

from gpubp._checks import json_with_keys, output_path
from gpubp.errors import InvalidValueError


def never(path):
    return False


def test_a_file_gpubp_did_not_write_is_kept_and_the_message_names_it(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("x1,x2,label\n1,2,0\n")
    with pytest.raises(InvalidValueError, match=r"--out: .*train\.csv holds a text of 18 bytes starting 'x1,x2,label', "
                                                r"not a predictions CSV written by gpubp.*pass --overwrite"):
        output_path("--out", path, never, "a predictions CSV")
    with pytest.raises(InvalidValueError, match=r"pass overwrite=True to replace it"):
        output_path("save: path", path, never, "a log")  # the Python API's words
    assert path.read_text() == "x1,x2,label\n1,2,0\n"


def test_its_own_kind_an_empty_file_a_new_one_or_overwrite_may_be_replaced(tmp_path):
    path = tmp_path / "out.csv"
    assert output_path("--out", path, never, "x") == str(path)  # nothing there
    path.write_text("")
    assert output_path("--out", path, never, "x") == str(path)  # nothing to lose
    path.write_text("data")
    assert output_path("--out", path, lambda p: True, "x") == str(path)  # gpubp's own
    assert output_path("--out", path, never, "x", overwrite=True) == str(path)  # the user says so
    with pytest.raises(InvalidValueError, match="--out: overwrite must be True or False, got 'yes'"):
        output_path("--out", path, never, "x", overwrite="yes")


def test_a_read_only_file_or_a_pipe_is_kept_even_with_overwrite(tmp_path):
    path = tmp_path / "mine.png"
    path.write_bytes(b"\x89PNG....")
    path.chmod(0o444)
    with pytest.raises(InvalidValueError, match=r"mine\.png is read-only; it is kept"):
        output_path("--plot", path, lambda p: True, "a plot", overwrite=True)
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo.csv")
        with pytest.raises(InvalidValueError, match=r"fifo\.csv is not a regular file; it is kept"):
            output_path("--out", tmp_path / "fifo.csv", never, "x", overwrite=True)


def test_the_message_says_what_a_binary_file_is(tmp_path):
    path = tmp_path / "plot.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(InvalidValueError, match=r"holds a PNG image of 108 bytes, not a plot written by gpubp"):
        output_path("--plot", path, never, "a plot")
    path.write_bytes(bytes(range(256)))
    with pytest.raises(InvalidValueError, match=r"holds a file of 256 bytes, not"):
        output_path("--plot", path, never, "a plot")


def test_an_epoch_log_replaces_a_log_but_keeps_someone_elses_file(tmp_path):
    """EpochLog opened whatever was at its path with "w" (or appended to it) at the first epoch."""
    import numpy as np

    import gpubp
    from gpubp.history import EpochLog, is_epoch_log
    data = tmp_path / "train.csv"
    data.write_text("x1,x2,label\n1,2,0\n")
    for append in (False, True):
        with pytest.raises(InvalidValueError, match=r"EpochLog path: .*train\.csv holds a text of 18 bytes starting "
                                                    r"'x1,x2,label', not an epoch log .*pass overwrite=True"):
            EpochLog(data, append=append)
    assert data.read_text() == "x1,x2,label\n1,2,0\n"
    model, X, y = gpubp.Sequential([gpubp.Dense(2, 2)], seed=0), np.ones((4, 2)), np.array([0, 1, 0, 1])
    for name in ("log.csv", "log.jsonl"):
        for _ in range(2):  # a rerun replaces its own log
            log = EpochLog(tmp_path / name)
            gpubp.fit(model, X, y, epochs=1, callbacks=[log], progress=False)
            log.close()
            lines = (tmp_path / name).read_text().splitlines()
            assert is_epoch_log(tmp_path / name) and len(lines) == 1 + name.endswith(".csv")  # one epoch
    log = EpochLog(data, overwrite=True)
    gpubp.fit(model, X, y, epochs=1, callbacks=[log], progress=False)
    log.close()
    assert data.read_text().startswith("epoch,loss,")


def test_a_file_that_cannot_be_read_is_refused_by_the_rule_not_by_its_description(tmp_path, monkeypatch):
    """A write-only file (mode 0o200 for its owner; root reads every file, so open is made to refuse it):
    was a raw PermissionError out of the message's description, in place of the refusal naming --out."""
    import gpubp._checks as checks
    path = tmp_path / "out.csv"
    path.write_text("someone's data\n")

    def refuse(file, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(file))
    monkeypatch.setattr(checks, "open", refuse, raising=False)  # the module's open, not every module's
    with pytest.raises(InvalidValueError, match=r"--out: .*out\.csv holds a file of 15 bytes that cannot be read "
                                                r"\(Permission denied\), not a predictions CSV.*pass --overwrite"):
        output_path("--out", path, refuse, "a predictions CSV")  # ``ours`` cannot read it either


@pytest.mark.parametrize("data, words", [
    (b"ab\xff", "a file of 3 bytes"),  # short binary: was read as "a text starting 'ab'"
    (b"x" * 511 + "\u00e9".encode()[:1] + b"more", "a text of 516 bytes starting 'xxx"),  # a character cut at 512
])
def test_the_refusal_tells_text_from_binary(tmp_path, data, words):
    path = tmp_path / "someone.dat"
    path.write_bytes(data)
    with pytest.raises(InvalidValueError, match=f"holds {words}"):
        output_path("--out", str(path), lambda p: False, "predictions")


def test_a_json_output_is_told_by_its_keys(tmp_path):
    path = tmp_path / "r.json"
    path.write_text('{"machine": 1, "threads": 2, "quick": false}')
    assert json_with_keys(path, {"machine", "threads"})
    assert not json_with_keys(path, {"machine", "threads"}, exact=True)  # a third key: not exactly those
    assert json_with_keys(path, {"machine", "threads", "quick"}, exact=True)
    assert not json_with_keys(path, {"machine"}, without={"quick"})  # a key that marks another kind
    assert not json_with_keys(path, {"machine"}, limit=10)  # larger than such a file is
    path.write_text('[["machine", "threads"]]')
    assert not json_with_keys(path, {"machine"})  # not an object
    path.write_text("machine,threads\n")
    with pytest.raises(ValueError):  # not JSON: output_path takes this as not ours
        json_with_keys(path, {"machine"})
    with pytest.raises(InvalidValueError, match="not a benchmark JSON"):
        output_path("--json", path, lambda p: json_with_keys(p, {"machine"}), "a benchmark JSON")
