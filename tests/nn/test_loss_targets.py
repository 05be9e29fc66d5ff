"""Targets a loss cannot mean are refused; soft-target rows of any sum get the exact gradient."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError
from gpubp.tools.gradcheck import gradcheck, gradcheck_loss

RNG = np.random.default_rng(0)
Z = RNG.normal(size=(4, 3))


@pytest.mark.parametrize("T", [
    np.array([[0.2, 0.3, 0.0], [1.0, 1.0, 0.5], [0.0, 0.0, 0.0], [3.0, 0.0, 1.0]]),  # sums 0.5, 2.5, 0, 4
    np.full((4, 3), 1 / 3),  # sums 1: the common case is unchanged
])
def test_softmax_cross_entropy_gradient_is_exact_for_any_row_sum(T):
    report = gradcheck_loss(gpubp.SoftmaxCrossEntropy(), Z, T)
    assert report.ok
    loss = gpubp.SoftmaxCrossEntropy()
    loss.forward(Z, T)
    softmax = np.exp(Z - Z.max(1, keepdims=True))
    softmax /= softmax.sum(1, keepdims=True)
    np.testing.assert_allclose(loss.backward(), (softmax * T.sum(1, keepdims=True) - T) / 4, rtol=1e-12)


def test_weighted_targets_through_a_model():
    model = gpubp.Sequential([gpubp.Dense(3, 5), gpubp.Tanh(), gpubp.Dense(5, 3)], dtype="float64")
    T = RNG.uniform(0, 2, size=(4, 3))
    assert gradcheck(model, gpubp.SoftmaxCrossEntropy(), Z, T).ok


@pytest.mark.parametrize("loss, T, words", [
    (gpubp.SoftmaxCrossEntropy(), np.array([[1.0, -0.5, 0.5]] * 4), "target rows must be >= 0 .* minimum of -0.5"),
    (gpubp.BinaryCrossEntropy(), np.full((4, 3), 1.5), r"targets must be in \[0, 1\], got values in \[1.5, 1.5\]"),
    (gpubp.BinaryCrossEntropy(), np.full((4, 3), -1.0), r"got values in \[-1, -1\]"),
])
def test_targets_outside_the_loss_domain_are_refused(loss, T, words):
    with pytest.raises(InvalidValueError, match=words):
        loss.forward(Z, T)
    model = gpubp.Sequential([gpubp.Dense(3, 3)], dtype="float64")
    with pytest.raises(InvalidValueError, match=words):  # fit checks the whole array once, before training
        gpubp.fit(model, Z, T, loss=loss, epochs=1)
