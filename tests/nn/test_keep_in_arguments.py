"""A layer's keep_gradients_in / keep_parameters_in given something other than a dict (found by fuzzing
the public API): an InvalidValueError naming the method, as Sequential's, not AttributeError 'items'."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError
from helpers import stable_id

JUNK = [None, True, "x", -1, 1.5, [], object(), np.array([]), np.zeros((0, 3)), lambda: None]
LAYERS = {"Dense": lambda: gpubp.Dense(4, 3, seed=0), "Conv2D": lambda: gpubp.Conv2D(1, 2, 3, seed=0),
          "BatchNorm": lambda: gpubp.BatchNorm(4), "ReLU": lambda: gpubp.ReLU()}


@pytest.mark.parametrize("method", ["keep_gradients_in", "keep_parameters_in"])
@pytest.mark.parametrize("layer", LAYERS.values(), ids=LAYERS.keys())
@pytest.mark.parametrize("junk", JUNK, ids=stable_id)
def test_keep_in_takes_a_dict(layer, method, junk):
    with pytest.raises(InvalidValueError, match=f"{method} takes a dict {{name: array}}, got a"):
        getattr(layer(), method)(junk)


def test_keep_gradients_in_still_takes_a_dict():
    layer = gpubp.Dense(4, 3, seed=0)
    layer.forward(np.ones((2, 4), np.float32))
    buf = {"W": np.zeros((4, 3), np.float32)}
    layer.keep_gradients_in(buf)
    assert layer.grads["W"] is buf["W"]
    layer.keep_gradients_in({})
