"""Bad input to the gradient checks: refused with a gpubp error naming it, before any
difference is taken, and a check that cannot fail is said so (never a silent pass)."""
import threading

import numpy as np
import pytest

import gpubp
from gpubp import nn
from gpubp.errors import DTypeError, GpubpWarning, GradcheckError, InvalidValueError, NumericalError, ShapeError
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


@pytest.mark.parametrize("value", [None, "no", 0])
def test_raise_on_fail_must_be_a_flag(value, first_dW_negated):
    """Before: None or 0 turned a failing check into a returned report, 'no' raised anyway."""
    with pytest.raises(InvalidValueError, match=f"gradcheck: raise_on_fail must be True or False, got {value!r}"):
        gradcheck(gpubp.mlp(8, [6], 4, "tanh", "cpu", "float64", seed=0), "softmax_cross_entropy", *data(),
                  raise_on_fail=value)


def test_a_model_without_parameters_is_not_a_silent_pass():
    """Before: a report with no rows, ok=True."""
    with pytest.raises(InvalidValueError, match=r"Sequential\(\[Tanh\(\)\].*has no parameters.*gradcheck_layer"):
        gradcheck(gpubp.Sequential([nn.Tanh()], dtype="float64"), "mse", np.ones((2, 3)), np.ones((2, 3)))


def test_empty_inputs_are_named():
    """Before: gradcheck_layer raised NumPy's 'attempt to get argmax of an empty sequence'."""
    with pytest.raises(ShapeError, match=r"gradcheck_layer: the input X is empty \(shape \(0, 3\)\)"):
        gradcheck_layer(nn.Dense(3, 2), np.ones((0, 3)))
    with pytest.raises(ShapeError, match=r"gradcheck: the input X is empty"):
        gradcheck(gpubp.mlp(8, [6], 4, "tanh", "cpu", "float64", seed=0), "mse", np.ones((0, 8)), np.ones((0, 4)))


def test_inputs_of_the_wrong_kind_are_named():
    with pytest.raises(DTypeError, match="gradcheck_layer: the input X: cannot turn an array of dtype <U1"):
        gradcheck_layer(nn.Dense(3, 2), np.array([["a", "b", "c"]]))
    # a loss is checked at predictions given as a list too (before: DeviceError 'got a list')
    Y, T = [[0.5, -1.0], [2.0, 0.1]], [[0.0, 1.0], [1.0, 0.0]]
    assert gradcheck_loss("mse", Y, T).ok


@pytest.mark.parametrize("dtype,eps", [("float32", 1e-6), ("float64", 1e-12)])
def test_an_eps_that_rounding_swamps_warns(dtype, eps):
    """float32 differences at the default eps=1e-6 report a correct backward as wrong: say why."""
    model = gpubp.mlp(8, [6], 4, "tanh", "cpu", "float64", seed=0)
    with pytest.warns(GpubpWarning, match=f"eps={eps:g} is below the square root of {dtype}'s machine epsilon"):
        gradcheck(model, "softmax_cross_entropy", *data(), dtype=dtype, eps=eps, raise_on_fail=False)


def test_a_sound_eps_does_not_warn(recwarn):
    model = gpubp.mlp(8, [6], 4, "tanh", "cpu", "float64", seed=0)
    assert gradcheck(model, "softmax_cross_entropy", *data(), dtype="float32", eps=1e-2, atol=1e-2, rtol=1e-2).ok
    assert not [w for w in recwarn if issubclass(w.category, GpubpWarning)]


def test_a_check_that_will_take_long_says_so_first(monkeypatch):
    """Before: no word of how long a check of a large model would run (evaluations x one forward)."""
    import itertools

    import gpubp.tools.gradcheck.differences as gc
    clock = itertools.count(0.0, 2.0)  # each reading 2 s later: the timed evaluation takes 2 s
    monkeypatch.setattr(gc.time, "perf_counter", lambda: next(clock))
    model = gpubp.mlp(8, [6], 4, "tanh", "cpu", "float64", seed=0)
    # 4 arrays: W1 48 entries, b1 6, W2 24, b2 4 -> 2 * (8 + 6 + 8 + 4) = 52 evaluations of 2 s
    with pytest.warns(GpubpWarning, match=r"52 evaluations of the model, about 2 minute.*max_samples_per_param "
                                          r"\(now 8\)"):
        gradcheck(model, "softmax_cross_entropy", *data(), max_samples_per_param=8)


def test_a_long_check_shows_its_progress_on_a_terminal(monkeypatch, capsys):
    """A check estimated at over 10 s (one timed evaluation) shows entries done; a short one is silent."""
    import itertools
    from gpubp import progress
    from gpubp.tools.gradcheck import differences as module
    model = gpubp.Sequential([gpubp.Dense(2, 3), gpubp.Tanh(), gpubp.Dense(3, 2)], seed=0, dtype="float64")
    X, y = np.ones((4, 2)), np.array([0, 1, 0, 1])
    monkeypatch.setattr(progress, "_isatty", lambda stream: True)
    gpubp.gradcheck(model, "softmax_cross_entropy", X, y)
    assert "entry" not in capsys.readouterr().err  # milliseconds: no bar
    clock = itertools.count(step=1.0)  # every evaluation "takes" a second: 2 x 17 entries, 34 s
    monkeypatch.setattr(module.time, "perf_counter", lambda: next(clock))
    gpubp.gradcheck(model, "softmax_cross_entropy", X, y)
    assert "entry 17/17" in capsys.readouterr().err
