"""A layer of one's own in a step plan is held to what it returns, as Sequential holds it eagerly: a
forward or backward that takes ``out=`` but returns a new array trains planned as eagerly (was: the
plan's buffer kept the dry run's values, read by the layers after it at every step: another model
trained, without a word), and what it must not return is refused alike, naming the layer."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import DeviceError, ShapeError, StateError
from gpubp.nn.base import Layer

X = np.random.default_rng(0).standard_normal((20, 3))
y = np.random.default_rng(1).standard_normal((20, 2))


class Doubles(Layer):
    """Y = 2 X, dX = 2 dY; ``forward`` and ``backward`` return what ``returns`` gives (X, dY, out)."""

    def __init__(self, returns, backend=None):
        super().__init__(backend)
        self.returns = returns

    def output_shape(self, shape):
        return tuple(shape)

    def output_form(self, form):
        return tuple(form)

    def config(self):
        return {"type": "Doubles"}

    def forward(self, X, out=None):
        self.X = X
        return self.returns["forward"](X, out)

    def backward(self, dY, out=None):
        return self.returns["backward"](dY, out)


class Scales(Doubles):
    """Doubles with a parameter w (its gradient sum dY X) that its backward may forget to write."""

    def parameter_shapes(self):
        return {"w": ()}

    def drawn_parameters(self, rng, prefix=""):
        return {"w": np.array(2.0)}

    def backward(self, dY, out=None):
        if self.returns.get("grads", True):
            self.grads["w"][...] = (dY * self.X).sum()
        return super().backward(dY, out)


WRITES = {"forward": lambda X, out: np.multiply(X, 2.0, out=out), "backward": lambda d, out: np.multiply(d, 2.0, out=out)}
NEW = {"forward": lambda X, out: X * 2.0, "backward": lambda d, out: d * 2.0}


def trained(layer, plan):
    model = gpubp.Sequential([gpubp.Dense(3, 4), layer, gpubp.Tanh(), gpubp.Dense(4, 2)], dtype="float64", seed=0)
    history = gpubp.fit(model, X, y, loss="mse", optimizer="sgd", lr=0.1, epochs=3, batch_size=8, progress=False,
                        plan=plan)
    return history.loss, [p.copy() for p in model.parameters().values()]


@pytest.mark.parametrize("returns", [NEW, {**WRITES, "forward": NEW["forward"]}, {**WRITES, "backward": NEW["backward"]}],
                         ids=["both new", "forward new", "backward new"])
def test_a_layer_leaving_out_unused_trains_planned_as_eagerly(returns):
    planned, eager, writing = trained(Doubles(returns), True), trained(Doubles(returns), False), \
        trained(Doubles(WRITES), True)
    assert planned[0] == eager[0] == writing[0]
    for a, b, c in zip(planned[1], eager[1], writing[1]):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("plan", [True, False])
@pytest.mark.parametrize("returns, error, words", [
    ({**NEW, "backward": lambda d, out: None}, DeviceError, r"layer 1 Doubles\(\).backward returned dX: expected an "
                                                           r"array on cpu, got a NoneType"),
    ({**NEW, "backward": lambda d, out: (d * 2.0)[:1]}, ShapeError, r"layer 1 Doubles\(\).backward returned dX of shape "
                                                                     r"\(1, 4\), but dX = dL/dX has the shape of the "
                                                                     r"layer's input, \(8, 4\)"),
])
def test_what_a_layer_must_not_return_is_refused_alike_planned_and_eagerly(returns, error, words, plan):
    """Was, planned: trained on, the plan's dX buffer left as it was."""
    with pytest.raises(error, match=words):
        trained(Doubles(returns), plan)


@pytest.mark.parametrize("plan", [True, False])
def test_a_backward_that_writes_no_gradient_is_refused_alike(plan):
    """Was, planned: trained on, w never moved."""
    with pytest.raises(StateError, match=r"layer 1 Scales\(\).backward wrote none of its gradients \['w'\]"):
        trained(Scales({**WRITES, "grads": False}), plan)
