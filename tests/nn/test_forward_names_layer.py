"""A model called directly (model.forward, model(X)) refuses an input some layer will not take before
any layer runs, naming that layer's index and the shapes up to it, as fit, evaluate and predict do."""
import numpy as np
import pytest

import gpubp


def test_a_refused_shape_names_the_layer_index_and_the_shapes_up_to_it():
    """Was: 'Dense(8, 8) expects inputs of width 8, got shape (2, 18)' alone: which of the model's
    Dense(8, 8) layers, and how the images became 18 values, was left to guess."""
    model = gpubp.Sequential([gpubp.Conv2D(1, 2, 3), gpubp.MaxPool2D(2), gpubp.Flatten(), gpubp.Dense(8, 8),
                              gpubp.ReLU(), gpubp.Dense(8, 8)], seed=0)
    with pytest.raises(gpubp.ShapeError) as caught:
        model.forward(np.ones((2, 1, 8, 8), np.float32))
    assert str(caught.value) == ("Dense(8, 8) expects inputs of width 8, got shape (2, 18) (layer 3; the shapes up "
                                 "to it: (2, 1, 8, 8) -> Conv2D -> (2, 2, 6, 6) -> MaxPool2D -> (2, 2, 3, 3) -> "
                                 "Flatten -> (2, 18))")


def test_the_first_layer_is_named_as_layer_0():
    model = gpubp.Sequential([gpubp.Dense(4, 3), gpubp.ReLU(), gpubp.Dense(3, 4)], seed=0)
    with pytest.raises(gpubp.ShapeError, match=r"^Dense\(4, 3\) expects inputs of width 4, got shape \(2, 5\) "
                                               r"\(layer 0\)$"):
        model(np.ones((2, 5), np.float32))
    images = gpubp.Sequential([gpubp.Conv2D(1, 2, 3), gpubp.Flatten()], seed=0)
    with pytest.raises(gpubp.ShapeError, match=r"^predict: X of shape \(2, 3, 5, 5\) does not fit the model: "
                                               r"Conv2D\(1, 2, .*\) expects 1 input channels \(NCHW\), got shape "
                                               r"\(2, 3, 5, 5\) \(layer 0\)$"):
        gpubp.predict(images, np.ones((2, 3, 5, 5)))
