"""The one rule of gpubp's outputs (``_checks.output_path``): a file already at an output path is
replaced only when gpubp wrote it as that kind of output, or when the user says so."""
import os

import pytest

from gpubp._checks import output_path
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
