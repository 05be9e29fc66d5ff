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
    (gpubp.SoftmaxCrossEntropy(), np.array([[1.0, -0.5, 0.5]] * 4), r"target rows must be finite and >= 0 .* got values in \[-0.5, 1\]"),
    (gpubp.BinaryCrossEntropy(), np.full((4, 3), 1.5), r"targets must be in \[0, 1\], got values in \[1.5, 1.5\]"),
    (gpubp.BinaryCrossEntropy(), np.full((4, 3), -1.0), r"got values in \[-1, -1\]"),
])
def test_targets_outside_the_loss_domain_are_refused(loss, T, words):
    with pytest.raises(InvalidValueError, match=words):
        loss.forward(Z, T)
    model = gpubp.Sequential([gpubp.Dense(3, 3)], dtype="float64")
    with pytest.raises(InvalidValueError, match=words):  # fit checks the whole array once, before training
        gpubp.fit(model, Z, T, loss=loss, epochs=1)


@pytest.mark.parametrize("loss", [gpubp.SoftmaxCrossEntropy(), gpubp.BinaryCrossEntropy()])
def test_nan_targets_do_not_slip_past_the_range_check(loss):
    # NaN compares False with every bound: "lo < 0 or hi > 1" let a NaN target through to a NaN loss
    T = np.full((4, 3), 0.25)
    T[1, 2] = np.nan
    with pytest.raises(InvalidValueError, match="NaN|nan"):
        loss.forward(Z, T)


@pytest.mark.parametrize("loss, good, bad", [
    (gpubp.MSE(), np.zeros((4, 3)), np.zeros((4, 2))),
    (gpubp.BinaryCrossEntropy(), np.zeros((4, 3)), np.full((4, 3), 2.0)),
    (gpubp.SoftmaxCrossEntropy(), np.array([0, 1, 2, 1]), np.array([0, 1, 2, 3])),
])
def test_a_forward_that_fails_leaves_no_gradient_of_an_earlier_batch(loss, good, bad):
    loss.forward(Z, good)
    with pytest.raises(gpubp.GpubpError):
        loss.forward(Z[:4], bad)
    with pytest.raises(gpubp.StateError, match="forward that failed"):  # was: the earlier batch's dL/dY
        loss.backward()


def test_labels_given_as_a_list_or_no_classes_are_named():
    with pytest.raises(gpubp.DeviceError, match="list"):  # was: AttributeError 'list' object has no 'ndim'
        gpubp.SoftmaxCrossEntropy().forward(Z, [0, 1, 2, 1])
    with pytest.raises(gpubp.ShapeError, match="no classes"):
        gpubp.SoftmaxCrossEntropy().forward(np.zeros((4, 0)), np.zeros(4, np.int64))
    with pytest.raises(InvalidValueError, match="unknown loss"):  # was: TypeError unhashable type
        gpubp.losses.get_loss(["mse"])
