"""A loss takes PyTorch's keyword arguments of the same loss at their default values, so ported code
(nn.CrossEntropyLoss(reduction="mean")) reads the same, and refuses any other value by name, saying
what gpubp's loss does, as the layers do (nn/windows.torch_options)."""
import numpy as np
import pytest

import gpubp


@pytest.mark.parametrize("make", [
    lambda: gpubp.MSE(reduction="mean"),
    lambda: gpubp.SoftmaxCrossEntropy(weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0),
    lambda: gpubp.BinaryCrossEntropy(weight=None, reduction="mean", pos_weight=None)])
def test_pytorch_s_defaults_are_taken(make):
    """Was: TypeError 'SoftmaxCrossEntropy() takes no arguments'."""
    loss = make()
    Y = np.zeros((2, 3), np.float32)
    T = np.array([0, 2]) if isinstance(loss, gpubp.SoftmaxCrossEntropy) else np.ones((2, 3), np.float32)
    assert float(loss.forward(Y, T)) == pytest.approx(float(type(loss)().forward(Y, T)))


@pytest.mark.parametrize("make, words", [
    (lambda: gpubp.MSE(reduction="sum"), r"MSE does not support reduction='sum': the loss is the mean over every element"),
    (lambda: gpubp.SoftmaxCrossEntropy(label_smoothing=0.1), r"SoftmaxCrossEntropy does not support "
                                                            r"label_smoothing=0.1"),
    (lambda: gpubp.SoftmaxCrossEntropy(weight=np.ones(3)), r"does not support weight=array"),
    (lambda: gpubp.BinaryCrossEntropy(pos_weight=2.0), r"BinaryCrossEntropy does not support pos_weight=2.0"),
    (lambda: gpubp.MSE(size=3), r"MSE got an unexpected keyword argument 'size' \(besides its own, it takes "
                                r"PyTorch's reduction at their default values only\)")])
def test_other_values_are_refused_by_name(make, words):
    with pytest.raises(gpubp.InvalidValueError, match=words):
        make()
