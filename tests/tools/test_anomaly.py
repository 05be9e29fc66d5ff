"""Anomaly mode names the first layer whose forward output or backward delta is NaN/Inf."""
import numpy as np
import pytest

import gpubp
from gpubp.tools.anomaly import anomaly_enabled
from gpubp.errors import NumericalError


class Poison(gpubp.Identity):
    """Identity that turns one entry into NaN, forward or backward."""

    def __init__(self, phase):
        super().__init__()
        self.phase = phase

    def forward(self, X):
        Y = super().forward(X).copy()
        if self.phase == "forward":
            Y[0, 0] = np.nan
        return Y

    def backward(self, dY):
        dX = super().backward(dY).copy()
        if self.phase == "backward":
            dX[0, 0] = np.inf
        return dX


def model(phase):
    return gpubp.Sequential([gpubp.Dense(3, 4), gpubp.Tanh(), Poison(phase), gpubp.Dense(4, 4), gpubp.Sigmoid(),
                             gpubp.Dense(4, 2)], dtype="float64")


def run(m):
    X, T = np.ones((5, 3)), np.zeros((5, 2))
    loss = gpubp.MSE()
    loss.forward(m.forward(X), T)
    m.backward(loss.backward())


def test_forward_fault_is_named():
    with gpubp.detect_anomaly(), pytest.raises(NumericalError, match=r"layer 2 \(Poison\(\)\) produced 1 NaN/Inf "
                                                                      r"value\(s\) in its forward output"):
        run(model("forward"))


def test_backward_fault_is_named():
    with gpubp.detect_anomaly(), pytest.raises(NumericalError, match=r"layer 2 \(Poison\(\)\).*backward delta"):
        run(model("backward"))


def test_off_by_default_and_restored_after_the_block():
    assert not anomaly_enabled()
    run(model("forward"))  # NaN flows silently without the mode (like NumPy itself)
    with gpubp.detect_anomaly():
        assert anomaly_enabled()
        with gpubp.detect_anomaly(False):
            assert not anomaly_enabled()
        assert anomaly_enabled()
    assert not anomaly_enabled()


def test_healthy_model_passes():
    m = model(None)
    with gpubp.detect_anomaly():
        run(m)
