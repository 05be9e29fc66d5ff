"""The gradient checks given what a demanding user gives them: a layer of their own whose forward or
backward returns the wrong thing, an eps too large for central differences, and the integer data
that fit takes. Each is refused naming what was wrong, warned of, or taken as fit takes it; never a
raw IndexError from inside the comparison, a report of the wrong shape, or a failure blamed on backprop."""
import numpy as np
import pytest
import torch

import gpubp
from gpubp.errors import DeviceError, GpubpWarning, GradcheckError, ShapeError, StateError
from gpubp.tools.gradcheck import gradcheck, gradcheck_layer, gradcheck_loss

from helpers import Scale


class Square(Scale):
    """Y = X^2 * s (s per column): dX = 2 X s dY, ds = sum over the batch of X^2 dY."""

    seed = 0  # drawn alike in every run (gradcheck_layer hands it no RNG)

    def __init__(self, n=3, backend=None):
        super().__init__(n, backend)

    def forward(self, X):
        self.X = X
        return X * X * self.params["s"]

    def backward(self, dY):
        self.grads["s"][...] = (self.X * self.X * dY).sum(axis=0)
        return 2 * self.X * self.params["s"] * dY


def returning(method, fn):
    class Slip(Square):
        pass

    def wrapped(self, A):
        return fn(getattr(Square, method)(self, A))
    setattr(Slip, method, wrapped)
    return Slip


X = np.random.default_rng(1).normal(size=(5, 3))


def test_a_sound_layer_of_ones_own_passes_and_matches_torch():
    report = gradcheck_layer(Square(), X)
    assert report.ok and [r.name for r in report.rows] == ["dX", "s"]
    layer = Square(backend=gpubp.get_backend("cpu", "float64"))
    Y = layer.forward(X)
    w = np.random.default_rng(2).normal(size=Y.shape)
    dX = layer.backward(w)
    Xt = torch.tensor(X, requires_grad=True)
    st = torch.tensor(layer.params["s"], requires_grad=True)
    ((Xt * Xt * st) * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(dX, Xt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.grads["s"], st.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("fn, error, words", [
    (lambda dX: dX[:, :2], ShapeError, "shape (5, 2)"),        # was: IndexError from the comparison
    (lambda dX: np.concatenate([dX, dX], 1), ShapeError, "shape (5, 6)"),  # was: a FAIL row of shape (5, 3)
    (lambda dX: dX.T.copy(), ShapeError, "shape (3, 5)"),      # was: a FAIL row of shape (5, 3)
    (lambda dX: None, DeviceError, "NoneType"),                # was: IndexError
], ids=["fewer", "more", "transposed", "None"])
def test_a_wrong_dX_is_refused_naming_the_layer(fn, error, words):
    with pytest.raises(error) as err:
        gradcheck_layer(returning("backward", fn)(), X)
    for word in ("Slip()", "backward", "dX", words):
        assert word in str(err.value)


@pytest.mark.parametrize("fn, words", [(lambda Y: Y.tolist(), "list"), (lambda Y: None, "NoneType")])
def test_a_forward_returning_no_array_is_refused_naming_the_layer(fn, words):
    """Was: AttributeError: 'list' object has no attribute 'shape', from inside gradcheck_layer."""
    with pytest.raises(DeviceError) as err:
        gradcheck_layer(returning("forward", fn)(), X)
    for word in ("Slip()", "forward", "Y", words):
        assert word in str(err.value)


def test_a_backward_that_writes_no_gradient_is_said_so():
    class Forgets(Square):
        def backward(self, dY):
            return 2 * self.X * self.params["s"] * dY
    with pytest.raises(StateError, match=r"Forgets\(\)\.backward wrote none of its gradients \['s'\]"):
        gradcheck_layer(Forgets(), X)


def model():
    return gpubp.Sequential([gpubp.Dense(3, 4), gpubp.Tanh(), gpubp.Dense(4, 3)], dtype="float64", seed=0)


@pytest.mark.parametrize("eps", [10.0, 0.5])
def test_an_eps_so_large_that_truncation_swamps_the_differences_warns(eps):
    """Was: eps=10 on a smooth tanh net reported every array FAIL (and an entry "at a kink, a ReLU input
    at 0") with no word that the step, not backprop, was at fault."""
    y = np.array([0, 1, 2, 0, 1])
    with pytest.warns(GpubpWarning, match=f"eps={eps:g} is so large that central differences are off by about "
                                          f"eps\\^2/6"):
        report = gradcheck(model(), "softmax_cross_entropy", X, y, eps=eps, raise_on_fail=False)
    assert report.ok == (eps < 1)  # at 0.5 the retries at eps/10, eps/100 still rescue it; not at 10
    assert gradcheck(model(), "softmax_cross_entropy", X, y).ok  # the same model at the default eps


def test_an_eps_within_the_tolerance_does_not_warn(recwarn):
    gradcheck(model(), "softmax_cross_entropy", X, np.array([0, 1, 2, 0, 1]), eps=1e-3)
    gradcheck_loss("mse", X, X[::-1].copy(), eps=1e-2, rtol=1e-3)
    assert not [w for w in recwarn if issubclass(w.category, GpubpWarning)]


def test_integer_data_is_checked_as_fit_takes_it():
    """Was: 'Dense input: expected float64 values, got an integer array' (and 'MSE targets: ...') for
    the uint8 pixels and integer targets that fit trains on."""
    pixels = np.random.default_rng(3).integers(0, 4, size=(5, 3)).astype(np.uint8)
    labels = np.array([0, 1, 2, 0, 1])
    as_ints = gradcheck(model(), "softmax_cross_entropy", pixels, labels)
    as_floats = gradcheck(model(), "softmax_cross_entropy", pixels.astype(float), labels)
    assert [(r.name, r.max_abs) for r in as_ints.rows] == [(r.name, r.max_abs) for r in as_floats.rows]
    assert gradcheck(model(), "mse", pixels, np.eye(3, dtype=int)[labels]).ok
    assert gradcheck_layer(Square(), pixels).ok
    assert gradcheck_loss("mse", pixels, labels.reshape(-1, 1).repeat(3, 1)).ok
    with pytest.raises(GradcheckError):  # still a check that can fail: a wrong backward on integer data
        gradcheck_layer(returning("backward", lambda dX: 2 * dX)(), pixels)
