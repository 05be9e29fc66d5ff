"""Losses misused: 0-d or non-float predictions, ``out`` buffers of the wrong kind; and the
logits at the ends of the float range, where the math still has a finite answer."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import DeviceError, DTypeError, InvalidValueError, ShapeError

F32 = np.float32
LOSSES = {"MSE": (gpubp.MSE, np.zeros((2, 3), F32)),
          "BinaryCrossEntropy": (gpubp.BinaryCrossEntropy, np.zeros((2, 3), F32)),
          "SoftmaxCrossEntropy": (gpubp.SoftmaxCrossEntropy, np.array([0, 2]))}


@pytest.mark.parametrize("name", ["MSE", "BinaryCrossEntropy"])
def test_0d_predictions_are_refused_as_such(name):
    with pytest.raises(ShapeError, match=f"{name} predictions: .*0-d"):
        LOSSES[name][0]()(np.array(1.0, F32), np.array(1.0, F32))


@pytest.mark.parametrize("Y, error, word", [
    (np.ones((2, 3), np.int64), DTypeError, "int64"), ([[1.0, 2.0, 3.0]] * 2, DeviceError, "list"),
])
@pytest.mark.parametrize("name", LOSSES)
def test_predictions_that_are_not_float_arrays_are_named(name, Y, error, word):
    make, T = LOSSES[name]
    with pytest.raises(error, match=f"{name} predictions: .*{word}"):
        make()(Y, T)


def readonly(shape):
    a = np.zeros(shape, F32)
    a.setflags(write=False)
    return a


@pytest.mark.parametrize("out, error, words", [
    (np.zeros((1, 3), F32), ShapeError, ["has shape (1, 3)", "expected (2, 3)"]),
    (np.zeros((2, 3)), DTypeError, ["float64"]),
    (np.zeros((2, 3), np.int64), DTypeError, ["integer"]),
    ([0.0], DeviceError, ["list"]),
    (readonly((2, 3)), InvalidValueError, ["read-only"]),
])
@pytest.mark.parametrize("name", LOSSES)
def test_backward_out_buffers_are_checked(name, out, error, words):
    make, T = LOSSES[name]
    loss = make()
    loss.forward(np.ones((2, 3), F32), T)
    with pytest.raises(error) as err:
        loss.backward(out=out)
    for word in [f"{name}.backward out", *words]:
        assert word in str(err.value)


@pytest.mark.parametrize("Z, label", [([[3e38, -3e38]], 0), ([[-np.inf, 0.0]], 1), ([[0.0, -np.inf, 5.0]], 2)])
def test_a_class_of_probability_zero_adds_nothing_to_the_loss(Z, label):
    """0 log 0 = 0: a -inf logit (a masked class) or logits whose difference overflows give the
    finite loss and gradient PyTorch gives, not NaN."""
    Z = np.array(Z, F32)
    loss = gpubp.SoftmaxCrossEntropy()
    with np.errstate(over="ignore"):  # the shift itself overflows for (3e38, -3e38)
        value = float(loss.forward(Z, np.array([label])))
    logits = np.where(np.isinf(Z), -np.inf, Z.astype(np.float64))
    p = np.exp(logits - logits.max())
    p /= p.sum()
    assert value == pytest.approx(-np.log(p[0, label]), abs=1e-6)
    want = p.copy()
    want[0, label] -= 1
    np.testing.assert_allclose(loss.backward(), want, atol=1e-6)


@pytest.mark.parametrize("name", ["BinaryCrossEntropy", "SoftmaxCrossEntropy"])
def test_check_targets_refuses_a_list_by_name(name):
    with pytest.raises(DeviceError, match=f"{name} targets: expected a NumPy or CuPy array, got a list"):
        LOSSES[name][0]().check_targets(np.zeros((2, 3), F32), [0, 5])


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8])
def test_a_column_of_class_labels_is_named_as_such(dtype):
    """(N, 1) integer labels: the advice is to flatten them, not to make them floats (which
    would be (N, 1) weights that fit no (N, C) predictions)."""
    with pytest.raises(ShapeError, match=r"integer targets of shape \(2, 1\) are class labels.*\(2,\)"):
        gpubp.SoftmaxCrossEntropy().forward(np.zeros((2, 3), F32), np.array([[0], [2]], dtype))


@pytest.mark.parametrize("name", LOSSES)
def test_predictions_with_no_outputs_per_sample_are_refused(name):
    """(N, 0): no value to average (MSE and BCE divided by zero in backward)."""
    make, _ = LOSSES[name]
    T = np.array([0, 0]) if name == "SoftmaxCrossEntropy" else np.zeros((2, 0), F32)
    with pytest.raises(ShapeError, match=r"no classes or outputs per sample \(predictions of shape \(2, 0\)\)"):
        make()(np.zeros((2, 0), F32), T)


@pytest.mark.parametrize("name", ["BinaryCrossEntropy", "SoftmaxCrossEntropy"])
@pytest.mark.parametrize("T", [np.empty((2, 3), object), np.zeros((2, 3), np.complex64)], ids=["object", "complex"])
def test_check_targets_refuses_targets_that_hold_no_numbers(name, T):
    with pytest.raises(DTypeError, match=f"{name} targets: expected numbers, got an array of {T.dtype}"):
        LOSSES[name][0]().check_targets(np.zeros((2, 3), F32), T)


@pytest.mark.parametrize("Z", [None, np.zeros(3, F32)])
def test_softmax_check_targets_names_predictions_that_are_not_2d(Z):
    with pytest.raises(ShapeError, match="SoftmaxCrossEntropy predictions: expected a 2-d array"):
        gpubp.SoftmaxCrossEntropy().check_targets(Z, np.array([0, 1]))
