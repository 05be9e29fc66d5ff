"""load_table on CSVs a demanding user gives it: each input here was once read wrongly
(a sample lost, a value misread) or refused without saying what was wrong."""
import re

import pytest

from gpubp.datasets import load_table
from gpubp.errors import InvalidValueError, ShapeError


def test_a_csv_without_its_header_row_is_refused_not_read_a_sample_short(tmp_path):
    """UCI's iris.data has no header: its first sample (5.1,3.5,1.4,0.2,setosa) was taken for the
    header, so that sample was lost and the features were named '5.1', '3.5', ... silently."""
    path = tmp_path / "iris.data.csv"
    path.write_text("5.1,3.5,1.4,0.2,setosa\n4.9,3.0,1.4,0.2,setosa\n7.0,3.2,4.7,1.4,versicolor\n"
                    "6.4,3.2,4.5,1.5,versicolor\n")
    with pytest.raises(InvalidValueError, match=r"first row \(5\.1,3\.5,1\.4,0\.2,setosa\) is a sample, not a "
                                                r"header: .*'setosa' is a value of its column \(line 2 too\)"):
        load_table(path)


@pytest.mark.parametrize("text", [
    "2019,2020,region\n1.0,2.0,north\n3.0,4.0,south\n",  # years as column names
    "0,1,label\n0.5,0.25,0\n0.75,0.5,1\n",  # pixel numbers as names, labels that are numbers
    "x,1,label\nx,2,a\ny,3,b\n",  # a name also a value, but a column of text is no sample's number
])
def test_a_header_with_numbers_among_its_names_is_still_a_header(tmp_path, text):
    path = tmp_path / "d.csv"
    path.write_text(text)
    try:
        table = load_table(path)
    except InvalidValueError as exc:  # the last case: 'x' is no number, said so, not "a sample"
        assert "is not a number" in str(exc) and "not a header" not in str(exc)
        return
    assert len(table.y) == 2


def test_a_quoted_value_after_a_space_is_read_without_its_quotes(tmp_path):
    """`1, 2, "yes"` (a space after each comma, as people type CSV): the quotes were kept as part of the
    value, so '"yes"' and 'yes' were two classes (four for a yes/no target), silently, and '"2"' was
    refused as no number."""
    path = tmp_path / "d.csv"
    path.write_text('"a", "b", "label"\n1, "2", "yes"\n3, 4, "no"\n5, 6, no\n7, 8, yes\n')
    table = load_table(path)
    assert table.features == ["a", "b"] and table.target == "label"
    assert table.classes == ["no", "yes"] and table.y.tolist() == [1, 0, 0, 1]
    assert table.X.tolist() == [[1, 2], [3, 4], [5, 6], [7, 8]]


def test_a_value_with_an_underscore_is_text_not_a_python_number(tmp_path):
    """Python reads "1_0" as 10 and "2021_03" as 202103: labels 1_0 and 2_0 were classes 10 and 20 (and
    predicted as such), a period column 2021_03 the number 202103, silently."""
    path = tmp_path / "d.csv"
    path.write_text("a,b,label\n1,2,1_0\n2,3,2_0\n3,4,1_0\n4,5,2_0\n")
    assert load_table(path).classes == ["1_0", "2_0"]
    path.write_text("a,period,label\n1,2021_03,0\n2,2021_04,1\n")
    with pytest.raises(InvalidValueError, match="line 2, column 'period': '2021_03' is not a number"):
        load_table(path)


@pytest.mark.parametrize("cell, hint", [
    ("", "(the cell is empty: a missing value? fill it in or remove the row)"),
    ('"1,5"', "(a decimal comma? write 1.5)"),
    ('"1,500"', "(a thousands separator, or a decimal comma? write 1500 or 1.500)"),
    ('"1,500,000"', "(thousands separators? write 1500000)"),
])
def test_a_cell_that_is_no_number_says_what_it_may_be(tmp_path, cell, hint):
    """Was: "'' is not a number", "'1,5' is not a number": the cause left to guess."""
    path = tmp_path / "d.csv"
    path.write_text(f"a,b,label\n{cell},2,0\n3,4,1\n")
    with pytest.raises(InvalidValueError) as info:
        load_table(path)
    assert str(info.value).endswith(f"line 2, column 'a': {cell.strip(chr(34))!r} is not a number {hint}"), info.value


@pytest.mark.parametrize("text", [
    "a,b,label\n1,2,0,,\n3,4,1\n5,6,0,\n",  # empty cells after the last column (Excel's, once a cell there was used)
    "a,b,label,,\n1,2,0,,\n3,4,1,,\n5,6,0\n",  # and a header over them with no names
])
def test_a_spreadsheets_empty_cells_right_of_the_table_are_not_columns(tmp_path, text):
    """Was: "line 2: 5 values but the header has 3 columns", or "column(s) [4, 5] of the header have no name"."""
    path = tmp_path / "d.csv"
    path.write_text(text)
    table = load_table(path)
    assert table.features == ["a", "b"] and table.X.tolist() == [[1, 2], [3, 4], [5, 6]]
    assert table.y.tolist() == [0, 1, 0]


@pytest.mark.parametrize("text, words", [
    ("a,b,label\n1,2,0,7\n3,4,1\n", "line 2: 4 values but the header has 3 columns"),  # a value there: refused
    ("a,b,label,\n1,2,0,x\n3,4,1,\n", r"column\(s\) \[4\] of the header have no name"),
])
def test_a_value_right_of_the_table_is_still_refused(tmp_path, text, words):
    path = tmp_path / "d.csv"
    path.write_text(text)
    with pytest.raises((InvalidValueError, ShapeError), match=words):
        load_table(path)


@pytest.mark.parametrize("mark", ["NA", "?", "null", "N/A"])
def test_a_missing_value_mark_among_numeric_labels_is_not_a_class(tmp_path, mark):
    """UCI's files mark a missing value '?', R and pandas 'NA': among labels 0 and 1 it was a third class,
    learnt and predicted, silently."""
    path = tmp_path / "d.csv"
    path.write_text(f"a,b,label\n1,2,0\n2,3,1\n3,4,{mark}\n4,5,0\n")
    with pytest.raises(InvalidValueError, match=rf"line 4, column 'label': the label '{re.escape(mark)}' among numbers "
                                                r"marks a missing value \(1 such row\(s\)\)"):
        load_table(path)
    path.write_text(f"a,b,label\n1,{mark},0\n2,3,1\n")
    with pytest.raises(InvalidValueError, match=r"is not a number \(it marks a missing value\? fill it in"):
        load_table(path)


def test_na_among_text_labels_is_a_label(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,region\n1,2,EU\n2,3,NA\n3,4,EU\n")
    assert load_table(path).classes == ["EU", "NA"]  # North America


def test_the_header_row_again_is_named_so(tmp_path):
    """`cat a.csv b.csv > all.csv`: was "line 4, column 'a': 'a' is not a number"."""
    path = tmp_path / "d.csv"
    path.write_text("a,b,label\n1,2,0\n2,3,1\na, b ,label\n3,4,0\n")
    with pytest.raises(InvalidValueError, match=r"d.csv, line 4: the header row again \(CSV files joined"):
        load_table(path)


def test_a_column_spelled_otherwise_in_the_file_is_named(tmp_path):
    """Was: "no column 'Label' to predict; the header has [..., 'label']", the difference left to spot."""
    path = tmp_path / "d.csv"
    path.write_text("Area-m2,b,label\n1,2,0\n2,3,1\n")
    with pytest.raises(InvalidValueError, match=r"no column 'Label' to predict; .*; spelled so in the file: 'label' "
                                                r"for 'Label'$"):
        load_table(path, target="Label")
    with pytest.raises(InvalidValueError, match=r"needs the column\(s\) \['area_m2'\], .*; spelled so in the file: "
                                                r"'Area-m2' for 'area_m2'$"):
        load_table(path, features=["area_m2", "b"], require_target=False)
