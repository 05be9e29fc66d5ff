"""Bad input to the gradient checks: refused with a gpubp error naming it, before any
difference is taken, and a check that cannot fail is said so (never a silent pass)."""
import threading

import numpy as np
import pytest

import gpubp
from gpubp import nn
from gpubp.errors import DTypeError, GpubpWarning, GradcheckError, InvalidValueError, NumericalError
from gpubp.tools.gradcheck import gradcheck, gradcheck_layer, gradcheck_loss


def deep_sigmoid_net(depth=12):
    return gpubp.mlp(8, [16] * depth, 4, "sigmoid", "cpu", "float64", seed=0)


def data(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 8)), rng.integers(0, 4, n)


@pytest.fixture
def first_dW_negated(monkeypatch):
    """A mutant: the first Dense layer's dW (the only one with 8 inputs) comes out with the wrong sign."""
    real = nn.Dense._backprop

    def backprop(self, dY, out, input_grad):
        result = real(self, dY, out, input_grad)
        if self.n_in == 8:
            self._grads["W"][...] *= -1
        return result
    monkeypatch.setattr(nn.Dense, "_backprop", backprop)


def test_a_wrong_gradient_too_small_for_atol_is_not_a_silent_pass(first_dW_negated):
    """Twelve sigmoid layers: the first layer's dW is ~1e-8, below atol=1e-6, so even its negative
    is within tolerance. The row must say the check could not fail, and a warning name it."""
    model = deep_sigmoid_net()
    X, y = data()
    with pytest.warns(GpubpWarning, match=r"0\.W.*within atol=1e-06 of zero"):
        report = gradcheck(model, "softmax_cross_entropy", X, y, raise_on_fail=False)
    assert "0.W" in report.vacuous
    assert "ok?" in str(report) and "cannot tell it from 0" in str(report)
    assert report.ok  # the mutant passes the loose check: hence the warning
    # an atol below the gradient's size (above the differences' ~1e-10 noise) catches it
    with pytest.raises(GradcheckError) as caught:
        gradcheck(model, "softmax_cross_entropy", X, y, atol=1e-9)
    assert [r.name for r in caught.value.report.rows if not r.ok] == ["0.W"]


def test_the_tight_atol_passes_the_true_gradient():
    assert gradcheck(deep_sigmoid_net(), "softmax_cross_entropy", *data(), atol=1e-9).vacuous == []


def test_softmax_over_one_class_is_a_check_that_cannot_fail():
    Y, T = np.random.default_rng(0).normal(size=(4, 1)), np.zeros(4, dtype=int)
    with pytest.warns(GpubpWarning, match="dY is within atol|of dY is within"):
        report = gradcheck_loss("softmax_cross_entropy", Y, T)
    assert report.vacuous == ["dY"]


def test_healthy_checks_do_not_warn(recwarn):
    model = gpubp.mlp(8, [6], 4, "tanh", "cpu", "float64", seed=0)
    assert gradcheck(model, "softmax_cross_entropy", *data()).vacuous == []
    assert not [w for w in recwarn if issubclass(w.category, GpubpWarning)]


@pytest.mark.parametrize("where", ["X", "y"])
def test_nan_inputs_are_refused_naming_the_input(where):
    model = gpubp.mlp(8, [6], 4, "tanh", "cpu", "float64", seed=0)
    X, _ = data()
    T = np.random.default_rng(1).normal(size=(16, 4))
    (X if where == "X" else T)[3, 1] = np.nan
    with pytest.raises(NumericalError, match=rf"gradcheck: the input {where} contains 1 NaN/Inf.*\(3, 1\)"):
        gradcheck(model, "mse", X, T)


def test_nan_layer_input_and_loss_inputs_are_refused():
    X = np.ones((3, 4))
    X[0, 0] = np.inf
    with pytest.raises(NumericalError, match="gradcheck_layer: the input X"):
        gradcheck_layer(nn.Dense(4, 2), X)
    with pytest.raises(NumericalError, match="gradcheck_loss: the input T"):
        gradcheck_loss("mse", np.ones((3, 4)), X)


def test_a_model_whose_loss_is_not_finite_is_refused_before_differences():
    model = gpubp.mlp(8, [6], 4, "tanh", "cpu", "float64", seed=0)
    model.layers[0].params["W"][0, 0] = np.nan
    with pytest.raises(NumericalError, match="the loss is nan at the inputs given"):
        gradcheck(model, "softmax_cross_entropy", *data())


@pytest.mark.parametrize("fn,obj,what", [
    (gradcheck, "model", "model must be a gpubp Sequential"),
    (gradcheck, nn.Dense(8, 4), "for one layer use gradcheck_layer"),
    (gradcheck_layer, "dense", "layer must be a gpubp Layer"),
    (gradcheck_layer, gpubp.Sequential([nn.Dense(8, 4)]), "for a model use gradcheck"),
])
def test_the_wrong_kind_of_object_is_named(fn, obj, what):
    X, y = data()
    args = (obj, "softmax_cross_entropy", X, y) if fn is gradcheck else (obj, X)
    with pytest.raises(InvalidValueError, match=what):
        fn(*args)


@pytest.mark.parametrize("dtype", ["bogus", None, "float16", "int64"])
def test_a_dtype_that_is_not_a_float_dtype_is_refused(dtype):
    with pytest.raises(DTypeError, match=f"gradcheck_layer: dtype must be 'float64'.*{dtype!r}"):
        gradcheck_layer(nn.Dense(3, 2), np.ones((2, 3)), dtype=dtype)


class Locked(nn.Identity):
    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()


def test_a_model_that_cannot_be_copied_is_named():
    model = gpubp.Sequential([nn.Dense(8, 4), Locked()], dtype="float64", seed=0)
    with pytest.raises(InvalidValueError, match="gradcheck works on a copy.*cannot be copied.*lock"):
        gradcheck(model, "mse", data()[0], np.zeros((16, 4)))
