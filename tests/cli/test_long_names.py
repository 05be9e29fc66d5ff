"""File names near the file system's limit (255 bytes a name on Linux and macOS): a name it takes is
written, whatever gpubp keeps beside it (a lock file's name is longer than the file's); a name it
does not take is one usage line naming its length, before any work."""
import os

import pytest

from gpubp.checkpoint import atomic
from gpubp.cli import main
from helpers import run_cli as run

TRAIN = ["train", "--device", "cpu", "--dataset", "xor", "--epochs", "1", "--quiet", "--hidden", "4"]
LIMIT = os.pathconf("/tmp", "PC_NAME_MAX") if hasattr(os, "pathconf") else 255


@pytest.mark.parametrize("flag, ending", [("--save", ".npz"), ("--log", ".csv")])
def test_a_name_the_file_system_takes_is_written_lock_and_all(tmp_path, capsys, flag, ending):
    """Was: a --save of 250 characters refused, 'no file can be made in <folder> (File name too long); give a path
    in a folder that takes new files' (its lock file's name, 13 characters longer, was too long); a --log so named
    failed after the first epoch, 'OSError: File name too long', naming neither flag nor file."""
    path = tmp_path / ("m" * (LIMIT - 1 - len(ending)) + ending)
    code, out, err = run([*TRAIN, flag, str(path)], capsys)
    assert code == 0 and path.is_file(), err
    assert os.listdir(tmp_path) == [path.name]  # no lock file left
    assert len(os.path.basename(atomic.lock_path(path))) <= LIMIT


@pytest.mark.parametrize("flag", ["--save", "--log", "--plot", "--data"])
def test_a_name_the_file_system_does_not_take_is_a_usage_error(tmp_path, capsys, flag):
    path = tmp_path / ("m" * (LIMIT + 10) + ".npz")
    code, out, err = run([*TRAIN, flag, str(path)], capsys)
    assert code == 2 and f"a name of {LIMIT + 14} bytes, over the {LIMIT} a file name may have here" in err, err
    assert os.listdir(tmp_path) == []
