"""Images through the Python API as an image user gives them: a model that does not fit them, or
labels that are not class indices, are named with what to change before any training."""
import re

import numpy as np
import pytest

import gpubp
from gpubp.datasets import load_table
from gpubp.errors import DTypeError, ShapeError

X = np.random.default_rng(0).random((40, 1, 8, 8))
y = np.arange(40) % 3


def _cnn(*tail):
    return gpubp.Sequential([gpubp.Conv2D(1, 4, 3), gpubp.ReLU(), gpubp.MaxPool2D(2), gpubp.Flatten(), *tail], seed=0)


def test_a_dense_of_the_wrong_width_after_flatten_is_named_with_the_shapes_layer_by_layer():
    """Was: '... Dense(100, 3) expects inputs of width 100, got shape (2, 144)', the 2 being fit's probe
    of two samples, and nothing said how 144 came about."""
    model = _cnn(gpubp.Dense(100, 3))
    for call in (lambda: gpubp.fit(model, X, y, epochs=1, progress=False), lambda: gpubp.predict(model, X)):
        with pytest.raises(ShapeError) as info:
            call()
        text = str(info.value)
        assert "Dense(100, 3)" in text and "(40, 36)" in text and "(2, 36)" not in text, text
        assert re.search(r"\(layer 4; the shapes up to it: \(40, 1, 8, 8\) -> Conv2D -> \(40, 4, 6, 6\) -> ReLU -> \(40, 4, 6, 6\) -> MaxPool2D -> "
                         r"\(40, 4, 3, 3\) -> Flatten -> \(40, 36\)", text), text


def test_a_convolution_that_leaves_no_pixel_is_named_before_training():
    model = gpubp.Sequential([gpubp.Conv2D(1, 4, 5), gpubp.MaxPool2D(2), gpubp.Conv2D(4, 4, 3), gpubp.Flatten(),
                              gpubp.Dense(4, 3)], seed=0)
    before = model.layers[0].params["W"].copy()
    with pytest.raises(ShapeError, match=r"Conv2D\(4, 4, .*the 3x3 window is larger than the padded input 2x2.*"
                                         r"\(layer 2; the shapes up to it: \(40, 1, 8, 8\) -> Conv2D -> \(40, 4, 4, 4\) -> MaxPool2D -> "
                                         r"\(40, 4, 2, 2\)"):
        gpubp.fit(model, X, y, epochs=1, progress=False)
    np.testing.assert_array_equal(model.layers[0].params["W"], before)


@pytest.mark.parametrize("given, words", [
    (X[:, 0], r"\(N, H, W\) images without a channel axis\? X\[:, None\]"),
    (X[0], r"one image \(C, H, W\)\? X\[None\]"),
])
def test_images_without_a_channel_or_sample_axis_are_told_the_axis_to_add(given, words):
    """Was: 'Conv2D(...) expects NCHW (4-d) inputs, got shape (2, 8, 8)', with no word of which axis."""
    model = _cnn(gpubp.Dense(36, 3))
    with pytest.raises(ShapeError, match=words):
        gpubp.predict(model, given)
    with pytest.raises(ShapeError, match=words):
        model.layers[0].forward(np.zeros(given.shape, np.float32))


def test_text_labels_are_refused_with_the_way_to_class_indices():
    """Was: 'cannot turn an array of dtype <U3 into float32 numbers; pass a numeric array'."""
    labels = np.array(["cat", "dog", "owl"])[y]
    with pytest.raises(DTypeError, match=r"y holds text labels .*np.unique\(y, return_inverse=True\)"):
        gpubp.fit(_cnn(gpubp.Dense(36, 3)), X, labels, epochs=1, progress=False)


def test_an_npz_of_images_without_a_channel_axis_reads_as_one_channel(tmp_path):
    np.savez(tmp_path / "nhw.npz", X=X[:, 0], y=y)
    table = load_table(tmp_path / "nhw.npz")
    assert table.X.shape == (40, 1, 8, 8)
    np.testing.assert_array_equal(table.X, X)
