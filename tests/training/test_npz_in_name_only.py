"""A file named .npz that is no zip of arrays: NumPy reads it as a pickle and refused it with "This
file contains pickled (object) data. If you trust the file you can load it unsafely using the
`allow_pickle=` keyword argument", which sent a user with a CSV under an .npz name to load it unsafely.
Now each is named for what it is."""
import gzip
import pickle

import pytest

from gpubp.datasets import load_table
from gpubp.errors import InvalidValueError

CSV = b"a,b,y\n1,2,0\n3,4,1\n"


@pytest.mark.parametrize("content, words", [
    (CSV, r"is text \(a CSV under an .npz name\? give it its .csv name\)"),
    (gzip.compress(CSV, mtime=0), r"is gzip-compressed \(an .npz.gz\? decompress it"),
    (pickle.dumps({"X": [[1.0]], "y": [0]}), "is a Python pickle, which gpubp does not load"),
    (b"", r"is empty \(0 bytes\)"),
    (b"\x00\x01\x02\x03 binary", r"is not a zip archive, beginning with the bytes b'\\x00\\x01"),
])
def test_a_file_that_is_an_npz_in_name_only_is_named_for_what_it_is(tmp_path, content, words):
    path = tmp_path / "data.npz"
    path.write_bytes(content)
    with pytest.raises(InvalidValueError, match=words) as info:
        load_table(path)
    assert "allow_pickle" not in str(info.value) and "so not an .npz of arrays X and y" in str(info.value)
