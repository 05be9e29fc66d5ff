"""A loss of one's own is held to what its forward and backward return, alike in a step plan and
eagerly: the mean loss as one real number, dL/dY as an array of the predictions' device, shape and
dtype. A backward that takes ``out=`` but returns a new array trains as it does eagerly (was: a
planned fit left dL/dY unwritten and trained on stale gradients, without a word)."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import DeviceError, DTypeError, ShapeError
from gpubp.losses import Loss

X = np.random.default_rng(0).standard_normal((20, 3))
y = np.random.default_rng(1).standard_normal((20, 2))


def own_loss(forward, backward):
    """A squared error of one's own whose forward and backward return ``forward(d)``, ``backward(d)``
    of the residual d = Y - T (its backward takes ``out`` and leaves it unused)."""
    class Own(Loss):
        def forward(self, Y, T):
            self.d = Y - T
            return forward(self.d)

        def backward(self, out=None):
            return backward(self.d)
    return Own()


def squared(d):
    return (d ** 2).mean()


def gradient(d):
    return 2 * d / d.size


def trained(loss, plan):
    model = gpubp.mlp(3, [4], 2, "tanh", "cpu", "float64", seed=0)
    history = gpubp.fit(model, X, y, loss=loss, optimizer="sgd", lr=0.1, epochs=3, batch_size=8, progress=False,
                        plan=plan)
    return history.loss, [p.copy() for p in model.parameters().values()]


@pytest.mark.parametrize("value", [squared, lambda d: float(squared(d))], ids=["0-d array", "float"])
def test_a_backward_leaving_out_unused_trains_planned_as_eager_and_as_mse(value):
    loss, params = trained(own_loss(value, gradient), plan=True)
    eager_loss, eager_params = trained(own_loss(value, gradient), plan=False)
    mse_loss, mse_params = trained("mse", plan=False)
    np.testing.assert_allclose(loss, mse_loss, rtol=1e-12)
    np.testing.assert_allclose(eager_loss, mse_loss, rtol=1e-12)
    for a, b, c in zip(params, eager_params, mse_params):
        np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(b, c, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("plan", [True, False])
@pytest.mark.parametrize("forward, backward, error, words", [
    (squared, lambda d: None, DeviceError, "Own.backward returned a NoneType, not dL/dY as an array on cpu"),
    (squared, lambda d: d.tolist(), DeviceError, "Own.backward returned a list, not dL/dY"),
    (squared, lambda d: gradient(d)[:, :1], ShapeError,
     r"Own.backward returned dL/dY of shape \(8, 1\), the predictions have shape \(8, 2\)"),
    (squared, lambda d: gradient(d).astype(np.float32), DTypeError,
     "Own.backward returned dL/dY of dtype float32, the predictions are float64"),
    (lambda d: [squared(d)], gradient, DTypeError, "Own.forward returned a list, not the batch's mean loss"),
    (lambda d: None, gradient, DTypeError, "Own.forward returned a NoneType"),
    (lambda d: (d ** 2).mean(axis=1), gradient, ShapeError, r"Own.forward returned an array of shape \(8,\)"),
    (lambda d: squared(d) + 0j, gradient, DTypeError, "Own.forward returned a 0-d array of complex128"),
])
def test_what_a_loss_of_ones_own_returns_is_refused_by_name(forward, backward, error, words, plan):
    """Was, planned: silently trained on (None, a list, a wrong shape or dtype from backward), or an
    AttributeError from the plan's copy of the value; eagerly: the first layer's error about its dY,
    or TypeError/ValueError from inside fit."""
    model = gpubp.mlp(3, [4], 2, "tanh", "cpu", "float64", seed=0)
    before = [p.copy() for p in model.parameters().values()]
    with pytest.raises(error, match=words):
        gpubp.fit(model, X, y, loss=own_loss(forward, backward), epochs=1, batch_size=8, progress=False, plan=plan)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.parameters().values()))
