"""A layer class of one's own whose ``__init__`` never calls ``super().__init__()`` (PyTorch requires the
same of a Module) is refused saying so, wherever it is first used. Was: Python's AttributeError from inside,
"'Checked' object has no attribute 'dtype'" (Sequential) or "object has no attribute '_params'" (params)."""
import copy
import pickle

import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError
from gpubp.tools.gradcheck import gradcheck_layer

from helpers import Scale

SAYS = r"NoSetUp was never set up as a gpubp Layer: NoSetUp.__init__ must call super\(\).__init__\(backend\)"


class NoSetUp(gpubp.nn.Layer):
    def __init__(self, n=4):
        self.n = n  # no super().__init__()

    def forward(self, X):
        return X

    def backward(self, dY):
        return dY


@pytest.mark.parametrize("use, where", [
    (lambda layer: gpubp.Sequential([gpubp.Dense(4, 4), layer]), "Sequential: item 1 "),
    (lambda layer: gradcheck_layer(layer, np.ones((2, 4))), "gradcheck_layer: "),
    (lambda layer: layer.params, ""), (lambda layer: layer.grads, ""), (lambda layer: layer.parameters_drawn, ""),
    (lambda layer: layer.load_parameters({}), "")], ids=["Sequential", "gradcheck_layer", "params", "grads",
                                                          "parameters_drawn", "load_parameters"])
def test_a_layer_never_set_up_is_named_with_the_fix(use, where):
    with pytest.raises(InvalidValueError, match=where + SAYS):
        use(NoSetUp())


def test_a_missing_attribute_of_a_layer_set_up_is_python_s_attribute_error():
    layer = Scale()
    with pytest.raises(AttributeError, match="'Scale' object has no attribute 'nothing'"):
        layer.nothing  # noqa: B018
    assert not hasattr(NoSetUp(), "Y")  # hasattr and getattr(layer, name, default) work as before


def test_layers_set_up_copy_and_pickle_as_before():
    model = gpubp.Sequential([gpubp.Dense(4, 3), Scale(3), gpubp.BatchNorm(3)], dtype="float64", seed=0)
    X = np.random.default_rng(0).normal(size=(5, 4))
    want = model.predict(X)
    for twin in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        np.testing.assert_array_equal(twin.predict(X), want)
