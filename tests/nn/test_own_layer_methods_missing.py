"""A layer of one's own without a forward is refused by the model that would run it, naming it; one without
a backward says so when a backward reaches it. Was: a bare NotImplementedError (no message) from Layer's
forward or backward, at the first step."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError


class NoForward(gpubp.nn.Layer):
    def backward(self, dY):
        return dY


class NoBackward(gpubp.nn.Layer):
    def forward(self, X):
        return X


def test_a_model_refuses_a_layer_without_forward():
    with pytest.raises(InvalidValueError, match=r"item 1 NoForward defines no forward\(X\)"):
        gpubp.Sequential([gpubp.Dense(3, 3), NoForward()])


def test_a_layer_without_backward_predicts_and_names_what_it_lacks_when_trained():
    model = gpubp.Sequential([gpubp.Dense(3, 3), NoBackward()], seed=0)
    X = np.ones((2, 3), np.float32)
    assert model.predict(X).shape == (2, 3)
    model.forward(X)
    with pytest.raises(NotImplementedError, match=r"NoBackward defines no backward\(dY\).*returns dX = dL/dX"):
        model.backward(np.ones((2, 3), np.float32))
    with pytest.raises(NotImplementedError, match=r"NoForward defines no forward\(X\)"):
        NoForward().forward(X)
