"""load_table on files as other programs write them: each input here was once
read wrongly, or refused naming the wrong line or the wrong cause."""
import gzip
import os
import re

import numpy as np
import pytest

from gpubp.datasets import load_table
from gpubp.errors import InvalidValueError, ShapeError

PLAIN = "a,b,y\n1,2,cat\n3,4,dog\n5,6,cat\n"


def line_of(text, word):
    """The 1-based line of the file on which ``word`` stands."""
    return text[:text.index(word)].count("\n") + 1


@pytest.mark.parametrize("text", [
    "a,b,y\n1,2,0\n\n3,oops,1\n",  # a blank line before it
    "\n\na,b,y\n1,2,0\n3,oops,1\n",  # blank lines before the header
    'a,b,y\n1,2,"two\nlines"\n3,oops,1\n',  # a quoted label spanning two lines
    "a,b,y\r\n1,2,0\r\n\r\n3,oops,1\r\n",
])
def test_a_bad_value_is_named_with_its_line_in_the_file(tmp_path, text):
    """Was: the line counted among the non-blank CSV rows (one or two lines early)."""
    path = tmp_path / "d.csv"
    path.write_bytes(text.encode())
    with pytest.raises(InvalidValueError, match=f"line {line_of(text, 'oops')}, column 'b': 'oops' is not a number"):
        load_table(path)


def test_a_short_row_is_named_with_its_line_in_the_file(tmp_path):
    text = "a,b,y\n1,2,0\n\n\n3,4\n"
    path = tmp_path / "d.csv"
    path.write_text(text)
    with pytest.raises(ShapeError, match=f"line {line_of(text, '3,4')}: 2 values but the header has 3 columns"):
        load_table(path)


@pytest.mark.parametrize("text, line", [
    ('a,b,y\n1,2,0\n3,4,"1\n5,6,0\n7,8,1\n9,10,0\n', 3),  # the rows after it read as one label
    ('a,b,y\n1,2,0\n3,4,"1" x\n5,6,0\n', 3),  # text after the closing quote
])
def test_a_quote_never_closed_is_refused_not_read_as_the_rest_of_the_file(tmp_path, text, line):
    """Was: a label "1\\n5,6,0\\n..." of one row in place of the three rows it swallowed."""
    path = tmp_path / "d.csv"
    path.write_text(text)
    with pytest.raises(InvalidValueError, match=f"d.csv, line {line}: not a CSV row .*quote"):
        load_table(path)


@pytest.mark.parametrize("separator", [";", "\t", "|"])
def test_a_file_separated_by_another_character_is_named_so(tmp_path, separator):
    """Was: "no feature column: the header ['a;b;y'] holds only the target", or (with decimal
    commas, 1,5;2;0) "2 values but the header has 1 columns"."""
    path = tmp_path / "d.csv"
    for rows in (["a", "b", "y"], ["1", "2", "0"], ["3", "4", "1"]), (["a", "b", "y"], ["1,5", "2", "0"]):
        path.write_text("\n".join(separator.join(r) for r in rows) + "\n")
        with pytest.raises(InvalidValueError, match=re.escape(f"separated by {separator!r}; gpubp reads comma-separated")):
            load_table(path)


@pytest.mark.parametrize("encode", [
    lambda text: gzip.compress(text.encode()),  # a .csv.gz, as the built-in digits are shipped
    lambda text: text.encode("utf-16"),  # UTF-16 with its BOM (Windows PowerShell's redirect)
    lambda text: gzip.compress(text.encode("utf-8-sig")),
])
def test_a_compressed_or_utf16_csv_reads_as_its_text(tmp_path, encode):
    """Was: "cannot read ... 'utf-8' codec can't decode byte 0x8b in position 1"."""
    (tmp_path / "plain.csv").write_text(PLAIN)
    (tmp_path / "other.csv.gz").write_bytes(encode(PLAIN))
    plain, other = load_table(tmp_path / "plain.csv"), load_table(tmp_path / "other.csv.gz")
    np.testing.assert_array_equal(other.X, plain.X)
    np.testing.assert_array_equal(other.y, plain.y)
    assert other.classes == plain.classes == ["cat", "dog"] and other.features == ["a", "b"]


@pytest.mark.parametrize("content, words", [
    ("a,b,y\n1,2,0\n3,4,caf\xe9\n".encode("latin-1"), r"line 3: byte 0xe9 is not utf-8 text.*save it as CSV in UTF-8"),
    (b"a,b,y\n1,2,0\n3,4,1\x00\n", "line 3: holds a NUL character, so it is not a text CSV"),
    (b"PK\x03\x04\x14\x00\x06\x00", "is a zip archive .*not a CSV"),
    (gzip.compress(PLAIN.encode())[:-6], r"cannot read .*d.csv \(EOFError: Compressed file ended"),
], ids=["latin-1", "NUL", "zip", "cut gzip"])
def test_a_file_that_is_not_utf8_text_is_named_with_where(tmp_path, content, words):
    """Was: the decoder's byte position (not a line), or a NUL byte read into a label of its own."""
    path = tmp_path / "d.csv"
    path.write_bytes(content)
    with pytest.raises(InvalidValueError, match=words):
        load_table(path)


@pytest.mark.parametrize("kwargs, words", [
    (dict(classes=["cat"]), r"classes \['cat'\] name 1 class\(es\); classification needs two or more"),
    (dict(classes=[]), r"classes \[\] name 0 class\(es\)"),
    (dict(features=[]), r"features \[\] name no column"),
])
def test_too_few_classes_or_features_given_are_named_as_given(tmp_path, kwargs, words):
    """Was: "column 'y' has only one distinct value ['cat']" of a column holding two, and "no target
    column (give --target COLUMN)" for features=[]."""
    (tmp_path / "d.csv").write_text(PLAIN)
    with pytest.raises(InvalidValueError, match=words):
        load_table(tmp_path / "d.csv", **kwargs)


def test_a_target_named_with_the_spaces_around_it_in_the_header_is_found(tmp_path):
    """The header's names are read without the spaces around them; a target named as the file spells
    it (" label ") was "no column ' label ' to predict; the header has ['a', 'b', 'label']"."""
    (tmp_path / "d.csv").write_text(" a , b , label \n1,2,cat\n3,4,dog\n")
    table = load_table(tmp_path / "d.csv", target=" label ")
    assert table.target == "label" and table.features == ["a", "b"] and table.classes == ["cat", "dog"]


def test_a_pandas_index_column_is_named_with_the_way_to_save_without_it(tmp_path):
    """Was: "column(s) [1] of the header have no name" for pandas' to_csv default, its index first."""
    (tmp_path / "d.csv").write_text(",a,b,label\n0,1,2,cat\n1,3,4,dog\n")
    with pytest.raises(InvalidValueError, match=r"column\(s\) \[1\] .*no name \(a pandas index column: save with "
                                                r"to_csv\(\.\.\., index=False\)\)"):
        load_table(tmp_path / "d.csv", target="label")


def test_class_labels_saved_as_a_column_are_one_label_per_sample(tmp_path):
    """Was: y of shape (N, 1) (y[:, None], as a regression keeps its targets) refused for classification, 'use
    --loss mse for several real-valued targets', though it holds one label per sample."""
    X, y = np.arange(12.0).reshape(6, 2), np.array([0, 1, 2, 0, 1, 2])
    np.savez(tmp_path / "column.npz", X=X, y=y[:, None])
    np.savez(tmp_path / "flat.npz", X=X, y=y)
    column, flat = load_table(tmp_path / "column.npz"), load_table(tmp_path / "flat.npz")
    assert column.classes == flat.classes == [0, 1, 2] and (column.y == flat.y).all()
    assert load_table(tmp_path / "column.npz", regression=True).y.shape == (6, 1)  # a regression's targets as given


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes (POSIX)")
def test_a_pipe_given_as_data_is_named_a_pipe(tmp_path):
    """Was: 'data file /dev/fd/63 does not exist (or is not a file)' for `gpubp predict m.npz <(zcat x.csv.gz)`:
    it exists; it is a pipe, which gpubp does not read (one with no writer would wait forever)."""
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(InvalidValueError, match=r"data file .*pipe is a pipe or a device, not a file \(process "
                                                r"substitution, /dev/stdin\?\); write it to a file and give that"):
        load_table(tmp_path / "pipe")
    with pytest.raises(InvalidValueError, match=r"data file .*missing.csv does not exist$"):
        load_table(tmp_path / "missing.csv")
