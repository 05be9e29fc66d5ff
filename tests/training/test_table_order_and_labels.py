"""load_table given names without an order, a feature the file lacks, float32 labels: each a silent
wrong answer or a misleading message before its fix."""
import numpy as np
import pytest

from gpubp.datasets import load_table
from gpubp.errors import InvalidValueError


@pytest.fixture
def table_csv(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,label\n1,2,x\n3,4,y\n5,6,x\n")
    return path


@pytest.mark.parametrize("given", [{"b", "a"}, frozenset({"a", "b"}), {"a": 0, "b": 1}, {"a": 0, "b": 1}.keys()])
def test_features_without_an_order_are_refused(table_csv, given):
    # was: a set's order (of strings: changing from run to run) taken as the order of X's columns
    with pytest.raises(InvalidValueError, match="features must be a list of column names, in order"):
        load_table(table_csv, features=given)


def test_classes_without_an_order_are_refused(table_csv):
    # was: a set's order taken as the class indices, y's meaning changing from run to run
    with pytest.raises(InvalidValueError, match="classes must be a list of labels, in order, got a set"):
        load_table(table_csv, classes={"y", "x"})
    assert load_table(table_csv, features=(c for c in ["b", "a"])).features == ["b", "a"]  # an iterable: in order


def test_a_feature_not_in_the_file_is_named(table_csv):
    # was: "no target column (give --target COLUMN)": the target is the one header column not a feature
    with pytest.raises(InvalidValueError, match=r"needs the column\(s\) \['q'\], not in the header"):
        load_table(table_csv, features=["a", "q"])


def test_float32_labels_are_named_as_written(tmp_path):
    # was: classes [0.10000000149011612, 0.20000000298023224], and classes=[0.1, 0.2] refused every label
    path = tmp_path / "f.npz"
    np.savez(path, X=np.ones((4, 2)), y=np.array([0.1, 0.2, 0.1, 0.2], np.float32))
    assert load_table(path).classes == [0.1, 0.2]
    assert load_table(path, classes=[0.1, 0.2]).y.tolist() == [0, 1, 0, 1]
    np.savez(path, X=np.ones((4, 2)), y=np.array([[0.1], [0.2], [0.1], [0.2]], np.float32))  # a column of labels
    assert load_table(path).classes == [0.1, 0.2]


@pytest.mark.parametrize("odd", [None, float("nan"), float("inf"), "", " ", b"x", 2j, ["x"]])
def test_classes_that_no_label_can_be_are_refused_as_such(table_csv, odd):
    # was: every label of the file refused as "'x' is not one of the model's classes ['x', None]"
    with pytest.raises(InvalidValueError, match=r"classes \['x', .*\] hold .*, which is no label: a class is text"):
        load_table(table_csv, classes=["x", odd])
    assert load_table(table_csv, classes=["x", "y", 2.5]).y.tolist() == [0, 1, 0]
