"""parity takes the data fit takes: integer or bool features and targets as floats (class labels of
softmax_cross_entropy kept integers), the same run as with float data; what does not fit the model or
the loss, or a backend's float range, is refused naming parity and the data. Was: a DTypeError from
inside the first Dense ("expected float32 values, got an integer array"), and refusals that named
neither parity nor X."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import NumericalError, ShapeError

SIDES = ("cpu/float32", "cpu/float64")


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.integers(0, 5, size=(12, 4)), np.arange(12) % 3


def _run(X, y, loss="mse"):
    model = gpubp.mlp(4, [5], 3, "tanh", seed=0)
    return gpubp.parity(model, X, y, loss, "sgd", steps=2, backends=SIDES)


def test_integer_and_bool_data_run_as_floats(data):
    X, y = data
    floats = _run(X.astype(float), np.eye(3)[y])
    for Xg, yg in ((X, np.eye(3, dtype=int)[y]), (X.astype(np.uint8), np.eye(3, dtype=bool)[y])):
        report = _run(Xg, yg)
        assert report.ok and report.entries == floats.entries
    assert _run(X > 2, y, "softmax_cross_entropy").ok  # labels stay labels


def test_refusals_name_parity_and_the_data(data):
    X, y = data
    with pytest.raises(ShapeError, match=r"^parity: X of shape \(12, 3\).*width 4"):
        _run(X[:, :3], np.eye(3)[y])
    with pytest.raises(ShapeError, match=r"^parity: X of shape \(12, 4\) and y of shape \(12,\).*MSE"):
        _run(X, y.astype(float))
    with pytest.raises(NumericalError, match=r"^parity: X on cpu/float32: holds values up to 4e\+39"):
        _run(X * 1e39, np.eye(3)[y])


def test_copy_model_takes_a_spec_and_refuses_what_is_not_a_model():
    """Was: AttributeError ('str' object has no attribute 'dtype'; 'Dense' has no 'from_config')."""
    from gpubp.errors import InvalidValueError
    from gpubp.tools.parity import copy_model
    model = gpubp.mlp(4, [5], 3, "tanh", seed=0)
    twin = copy_model(model, "cpu/float64")
    assert twin.backend.dtype == np.float64 and twin is not model
    assert all(np.allclose(twin.parameters()[k], p) for k, p in model.parameters().items())
    with pytest.raises(InvalidValueError, match=r"^copy_model: model must be a gpubp Sequential, got a Dense"):
        copy_model(gpubp.Dense(4, 3), "cpu")
