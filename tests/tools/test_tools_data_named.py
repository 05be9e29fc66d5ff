"""gradcheck, gradcheck_layer, gradcheck_loss and record_gradients name themselves and the inputs given
when the model, layer or loss refuses them (was: the layer's or loss's words alone, e.g. "Dense(4, 5)
expects inputs of width 4", naming neither the tool nor X), and record_gradients takes integer or bool
data as fit does (was: "Dense input: expected float32 values, got an integer array")."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import DTypeError, InvalidValueError, ShapeError
from gpubp.tools.diagnostics import record_gradients


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, 4)), np.arange(6) % 3


def test_gradcheck_names_its_inputs(data):
    X, y = data
    model = gpubp.mlp(4, [5], 3, "tanh", seed=0)
    with pytest.raises(ShapeError, match=r"^gradcheck: the inputs X of shape \(6, 3\).*width 4"):
        gpubp.gradcheck(model, "softmax_cross_entropy", X[:, :3], y)
    with pytest.raises(InvalidValueError, match=r"^gradcheck: the inputs X .* and y of shape \(6,\).*labels must"):
        gpubp.gradcheck(model, "softmax_cross_entropy", X, y + 3)
    with pytest.raises(ShapeError, match=r"^gradcheck_layer: the input X of shape \(4,\)"):
        gpubp.gradcheck_layer(gpubp.Dense(4, 3), X[0])
    with pytest.raises(ShapeError, match=r"^gradcheck_loss: the inputs Y of shape \(6, 4\) .* and T of shape \(6, 2\)"):
        gpubp.gradcheck_loss("mse", X, X[:, :2])


def test_record_gradients_takes_fits_data_and_names_what_does_not_fit(data):
    X, y = data
    model = gpubp.mlp(4, [5], 3, "tanh", seed=0)
    ints = record_gradients(model, (X * 3).astype(int), np.eye(3, dtype=int)[y], "mse")
    floats = record_gradients(model, (X * 3).astype(int).astype(float), np.eye(3)[y], "mse")
    assert ints.dW_norms == floats.dW_norms and ints.delta_norms == floats.delta_norms
    assert record_gradients(model, X > 0, y, "softmax_cross_entropy").dW_norms  # labels stay labels
    with pytest.raises(ShapeError, match=r"^record_gradients: X of shape \(4,\)"):
        record_gradients(model, X[0], y[:1], "softmax_cross_entropy")
    with pytest.raises(DTypeError, match=r"^record_gradients: .*integer class labels"):
        record_gradients(model, X, y.astype(float), "softmax_cross_entropy")
    assert model.observers == []
