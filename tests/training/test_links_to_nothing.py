"""A data file or checkpoint given as a symbolic link that leads to no file (its file moved away, or a
loop of links). Was: "no checkpoint at latest.npz", "data file train.csv does not exist", while `ls`
shows the name there; now the refusal says where the link leads."""
import os

import pytest

from gpubp import checkpoint
from gpubp.datasets import load_table
from gpubp.errors import CheckpointError, InvalidValueError


@pytest.fixture
def links(tmp_path):
    os.symlink("run-3.npz", tmp_path / "latest.npz")
    os.symlink("moved.csv", tmp_path / "train.csv")
    os.symlink("b", tmp_path / "a")
    os.symlink("a", tmp_path / "b")
    return tmp_path


def test_a_link_to_a_file_not_there_says_so(links):
    with pytest.raises(CheckpointError, match=r"no checkpoint at .*latest.npz \(a link to run-3.npz, which does not "
                                              r"exist\)"):
        checkpoint.load(links / "latest.npz", "cpu")
    with pytest.raises(InvalidValueError, match=r"data file .*train.csv does not exist \(a link to moved.csv, which "
                                                r"does not exist\)"):
        load_table(links / "train.csv")


def test_a_loop_of_links_says_so(links):
    with pytest.raises(CheckpointError, match=r"\(a link in a loop of links, leading to no file\)"):
        checkpoint.read_metadata(links / "a")
    with pytest.raises(InvalidValueError, match=r"\(a link in a loop of links, leading to no file\)"):
        load_table(links / "a")
