"""Arrays a user gives a layer to write into or keep: an ``out`` that is the input a backward
still needs, a read-only parameter or gradient. Each was a silent wrong answer or a raw error."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError


def test_dense_forward_refuses_an_out_that_is_its_input():
    """Was: Y written over X, so dW = X^T delta used Y: a silently wrong gradient."""
    layer = gpubp.Dense(3, 3, seed=0, backend=gpubp.get_backend("cpu", "float64"))
    X = np.random.default_rng(0).standard_normal((4, 3))
    for out in (X, X[:, :], X.reshape(4, 3)):
        with pytest.raises(InvalidValueError, match=r"Dense\(3, 3\)\.forward: out shares memory with X"):
            layer.forward(X, out=out)
    # an out of its own is taken, and gives what no out gives
    expected = gpubp.Dense(3, 3, seed=0, backend=gpubp.get_backend("cpu", "float64"))
    out = np.empty((4, 3))
    assert np.array_equal(layer.forward(X, out=out), expected.forward(X))
    delta = np.ones((4, 3))
    layer.backward(delta)
    expected.backward(delta)
    assert np.array_equal(layer.grads["W"], expected.grads["W"])


@pytest.mark.parametrize("store, words", [("params", "parameter W: the array is read-only"),
                                          ("grads", "gradient W: the array is read-only")])
def test_a_read_only_parameter_or_gradient_is_refused_when_set(store, words):
    """Was: accepted, then backward's accumulation or the optimizer's update raised NumPy's
    'output array is read-only' dressed as a ShapeError of matmul."""
    layer = gpubp.Dense(3, 2, seed=0, backend=gpubp.get_backend("cpu", "float64"))
    before = getattr(layer, store)["W"]
    frozen = np.zeros((3, 2))
    frozen.flags.writeable = False
    with pytest.raises(InvalidValueError, match=r"Dense\(3, 2\) " + words):
        getattr(layer, store)["W"] = frozen
    assert getattr(layer, store)["W"] is before
    getattr(layer, store)["W"] = frozen.copy()  # a writable copy is taken


def test_predict_names_its_argument_when_it_cannot_read_it():
    model = gpubp.mlp(4, [3], 2, seed=0)
    for X, error in ((np.ones((2, 4), complex), gpubp.errors.DTypeError), ([[1, 2], [3]], gpubp.errors.ShapeError)):
        with pytest.raises(error, match=r"^Sequential.predict X: "):
            model.predict(X)
