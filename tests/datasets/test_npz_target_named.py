"""An .npz's target named by ``target=``: was ignored (its array y read whatever was asked); now the
array named is read, and a name the file does not hold is refused naming the file, the name and its arrays."""
import numpy as np
import pytest

from gpubp.datasets import load_table
from gpubp.errors import InvalidValueError, ShapeError

X = np.arange(12.0).reshape(6, 2)


@pytest.fixture
def npz(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=X, y=np.array([0, 1, 0, 1, 0, 1]), y_coarse=np.array(["a", "a", "b", "b", "a", "b"]))
    return path


def test_the_array_named_is_the_target(npz):
    table = load_table(npz, target="y_coarse")
    assert table.target == "y_coarse" and table.classes == ["a", "b"] and table.y.tolist() == [0, 0, 1, 1, 0, 1]
    assert load_table(npz, target="y").y.tolist() == load_table(npz).y.tolist() == [0, 1, 0, 1, 0, 1]
    assert load_table(npz).target == "y"
    assert load_table(npz, target="y", regression=True).y.shape == (6, 1)


def test_a_target_the_npz_does_not_hold_is_refused_naming_its_arrays(npz):
    with pytest.raises(InvalidValueError, match=r"d\.npz: no array 'z' to predict; the \.npz holds "
                                                r"\['X', 'y', 'y_coarse'\]"):
        load_table(npz, target="z")
    with pytest.raises(InvalidValueError, match=r"no array 'Y' to predict.*spelled so in the file: 'y' for 'Y'"):
        load_table(npz, target="Y")
    with pytest.raises(InvalidValueError, match=r"d\.npz: target 'X' names the features' array"):
        load_table(npz, target="X")


def test_a_target_not_required_is_not_read(npz):
    table = load_table(npz, target="z", require_target=False)  # as a CSV's column absent when predicting
    assert table.y is None and table.X.shape == (6, 2)


def test_a_named_targets_bad_values_are_named_by_its_name(tmp_path):
    np.savez(tmp_path / "n.npz", X=X, labels=np.array([1.0, np.nan, 0, 1, 0, 1]), rows=np.full((6, 2), np.inf),
             words=np.array(["1", "a", "", "b", "a", "b"]), objects=np.array([1, "a", 2, 3, 4, 5], dtype=object))
    with pytest.raises(InvalidValueError, match=r"n\.npz, labels\[1\], column 'labels': 'nan' is not finite"):
        load_table(tmp_path / "n.npz", target="labels", regression=True)
    with pytest.raises(InvalidValueError, match=r"n\.npz: rows holds NaN/Inf, the first at index \(0, 0\)"):
        load_table(tmp_path / "n.npz", target="rows", regression=True)
    with pytest.raises(InvalidValueError, match=r"n\.npz, words\[2\], column 'words': the label is empty"):
        load_table(tmp_path / "n.npz", target="words")
    # an array of Python objects is refused as the target (was: skipped, then "no array 'objects'")
    with pytest.raises(InvalidValueError, match=r"the array 'objects' holds Python objects"):
        load_table(tmp_path / "n.npz", target="objects")


def test_features_given_for_an_npz_must_be_its_columns_by_position(npz):
    """Was: features=["b", "a"] taken as the names of X's two columns, unread (no column chosen or reordered)."""
    assert load_table(npz, features=["x0", "x1"]).features == ["x0", "x1"]
    for features in (["b", "a"], ["x1", "x0"]):
        with pytest.raises(InvalidValueError, match=r"d\.npz: features \[.*\] are not X's columns, which an \.npz "
                                                    r"names by position, \['x0', 'x1'\]"):
            load_table(npz, features=features)
    with pytest.raises(ShapeError, match=r"d\.npz: X has 2 features per sample, the model expects 3"):
        load_table(npz, features=["x0", "x1", "x2"])
