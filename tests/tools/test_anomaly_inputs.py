"""Anomaly mode blames the right place: the model's input, the loss's gradient, a layer's
parameter gradient; and takes only True/False, in a block that may be entered again."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError, NumericalError
from gpubp.tools.anomaly import anomaly_enabled


def model():
    return gpubp.Sequential([gpubp.Dense(3, 4), gpubp.Tanh(), gpubp.Dense(4, 2)], dtype="float64", seed=0)


def run(m, X, T, input_grad=True, loss=None):
    loss = loss or gpubp.MSE()
    loss.forward(m.forward(X), T)
    m.backward(loss.backward(), input_grad=input_grad)


def test_a_nan_input_is_blamed_on_the_input_not_layer_0():
    X = np.ones((5, 3))
    X[2, 1] = np.nan
    with gpubp.detect_anomaly(), pytest.raises(NumericalError, match="the model's input X has 1 NaN/Inf value"):
        run(model(), X, np.zeros((5, 2)))


class NaNGradient(gpubp.MSE):
    """A loss whose gradient is NaN (MSE itself refuses NaN targets, which made one before)."""

    def backward(self, out=None):
        return super().backward(out) * np.nan


def test_a_nan_loss_gradient_is_blamed_on_the_loss_gradient_not_the_last_layer():
    with gpubp.detect_anomaly(), pytest.raises(NumericalError, match=r"the gradient dY that layer 2 \(Dense\(4, 2\)\) "
                                                                      r"received from the loss has 10 NaN/Inf"):
        run(model(), np.ones((5, 3)), np.zeros((5, 2)), loss=NaNGradient())


def test_a_first_layer_gradient_without_dx_is_checked():
    """fit skips the first layer's dX: its dW was the one result left unchecked."""
    m = gpubp.Sequential([gpubp.Dense(3, 2)], dtype="float64", seed=0)
    X = np.ones((4, 3))
    X[:, 0] = 1e300  # dW = X^T dY overflows; the output and dY stay finite
    m.layers[0].params["W"][0] = 1e-300
    with gpubp.detect_anomaly(), pytest.raises(NumericalError, match=r"layer 0 \(Dense\(3, 2\)\) produced \d+ "
                                                                      r"NaN/Inf value\(s\) in its backward gradient dW"):
        with np.errstate(over="ignore"):
            run(m, X, np.full((4, 2), 1e10), input_grad=False)


@pytest.mark.parametrize("enabled", ["false", None, 0, 1])
def test_enabled_must_be_a_bool(enabled):
    """``detect_anomaly("false")`` turned the mode on."""
    with pytest.raises(InvalidValueError, match="must be True or False"):
        with gpubp.detect_anomaly(enabled):
            pass


def test_one_block_entered_again_nested_and_later():
    block = gpubp.detect_anomaly()
    with block:
        with block:
            assert anomaly_enabled()
        assert anomaly_enabled()
    assert not anomaly_enabled()
    with block, pytest.raises(NumericalError, match="input X"), np.errstate(invalid="ignore"):
        run(model(), np.full((2, 3), np.inf), np.zeros((2, 2)))
    assert not anomaly_enabled()


def test_exit_without_enter_is_a_state_error():
    """Before: IndexError 'pop from empty list' from the block's bookkeeping."""
    from gpubp.errors import StateError
    block = gpubp.detect_anomaly()
    with pytest.raises(StateError, match="__exit__ without a matching __enter__"):
        block.__exit__(None, None, None)
    with block:  # the block still works afterwards
        assert anomaly_enabled()
    assert not anomaly_enabled()
