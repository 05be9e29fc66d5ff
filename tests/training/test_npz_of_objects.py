"""An .npz whose arrays hold Python objects (pandas' ``df["species"].values`` is an object array,
stored as a pickle, which gpubp never loads). Was: "cannot read d.npz as .npz (ValueError: Object
arrays cannot be loaded when allow_pickle=False)", naming no array and no way out, and an object
array of column names saved beside X and y stopped the file from being read at all."""
import numpy as np
import pytest

from gpubp.datasets import load_table
from gpubp.errors import InvalidValueError, ShapeError

X = np.random.default_rng(0).normal(size=(12, 3))
LABELS = np.array(["cat", "dog"] * 6, dtype=object)


@pytest.mark.parametrize("arrays, words", [
    ({"X": X.astype(object), "y": np.arange(12) % 2}, "the array 'X' holds Python objects .* save X as numbers "
                                                      r"\(X\.astype\(np\.float64\)\)"),
    ({"X": X, "y": LABELS}, r"the array 'y' holds Python objects .* save y as numbers or text \(y\.astype\(str\)\)"),
])
def test_x_or_y_of_python_objects_is_named_with_how_to_save_it(tmp_path, arrays, words):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(InvalidValueError, match=words):
        load_table(tmp_path / "d.npz")


def test_an_array_of_objects_beside_x_and_y_is_not_read(tmp_path):
    np.savez(tmp_path / "d.npz", X=X, y=LABELS.astype(str), columns=np.array(["a", "b", None], dtype=object))
    table = load_table(tmp_path / "d.npz")
    assert table.classes == ["cat", "dog"] and table.X.shape == (12, 3)


def test_a_y_of_no_target_per_sample_is_named(tmp_path):
    """y of shape (N, 0): a regression was refused with "Scaler: 0 means but 0 stds", naming no file."""
    np.savez(tmp_path / "d.npz", X=X, y=np.zeros((12, 0)))
    for regression in (True, False):
        with pytest.raises(ShapeError, match=r"d.npz: y holds no target per sample \(shape \(12, 0\)\)"):
            load_table(tmp_path / "d.npz", regression=regression)
