"""Sequential.backward refuses to run on layers that are not those its last forward ran through (one removed,
inserted or replaced since), or after a forward that raised part way. Was: each layer's backward read what its
own last forward saved, so removing a trailing ReLU gave the Dense below gradients without the ReLU's mask, and
after a failed forward the layers before the failure held the new batch, those after it the old: silently."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import StateError

from helpers import Scale

X = np.random.default_rng(0).normal(size=(5, 3))
dY = np.random.default_rng(1).normal(size=(5, 4))


def net():
    return gpubp.Sequential([gpubp.Dense(3, 4), gpubp.ReLU()], dtype="float64", seed=0)


@pytest.mark.parametrize("edit", [
    lambda m: m.layers.pop(),
    lambda m: m.layers.append(gpubp.Identity(backend=m.backend)),
    lambda m: m.layers.insert(1, gpubp.Sigmoid(backend=m.backend)),
    lambda m: m.layers.__setitem__(1, gpubp.ReLU(backend=m.backend)),
    lambda m: setattr(m, "layers", [m.layers[0], gpubp.Tanh(backend=m.backend)]),
], ids=["popped", "appended", "inserted", "replaced", "reassigned"])
def test_a_backward_on_other_layers_than_the_forward_ran_is_refused(edit):
    model = net()
    model.forward(X)
    edit(model)
    with pytest.raises(StateError, match="the model's layers changed since the last forward.*run forward again"):
        model.backward(dY)
    model.forward(X)  # a new forward on the layers as they are: its backward runs
    assert model.backward(np.ones_like(model.forward(X))).shape == X.shape


class FailsOnce(Scale):
    fail = False

    def forward(self, X):
        if self.fail:
            raise ValueError("this batch")
        return super().forward(X)


def test_a_backward_after_a_forward_that_raised_is_refused():
    failing = FailsOnce(4)
    model = gpubp.Sequential([gpubp.Dense(3, 4), failing, gpubp.Dense(4, 2)], dtype="float64", seed=0)
    model.forward(X)
    failing.fail = True
    with pytest.raises(ValueError):
        model.forward(X[:5] * 2)
    with pytest.raises(StateError, match="after a forward that did not finish"):
        model.backward(np.ones((5, 2)))
    failing.fail = False
    model.forward(X)
    model.backward(np.ones((5, 2)))


def test_the_same_layers_in_a_new_list_are_the_layers_the_forward_ran():
    model = net()
    model.forward(X)
    model.layers = list(model.layers)
    assert model.backward(dY).shape == X.shape
