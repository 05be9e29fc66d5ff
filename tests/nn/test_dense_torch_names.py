"""Dense written as PyTorch's Linear is (Linear(in_features=784, out_features=10, device=None, dtype=None)):
its names for the widths taken, device and dtype at their defaults only, the rest refused naming them.
Was: Python's bare TypeError "Dense.__init__() got an unexpected keyword argument 'in_features'"
(and 'device', which Conv2D and BatchNorm took)."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError

from helpers import torch_reference


@pytest.mark.parametrize("make", [
    lambda b: gpubp.Dense(in_features=4, out_features=3, backend=b),
    lambda b: gpubp.Dense(4, out_features=3, backend=b),
    lambda b: gpubp.Dense(in_features=4, out_features=3, bias=True, device=None, dtype=None, backend=b)])
def test_pytorch_s_names_build_the_layer_linear_is(make):
    torch = pytest.importorskip("torch")
    backend = gpubp.get_backend("cpu", "float64")
    layer = make(backend)
    assert layer.config() == gpubp.Dense(4, 3).config()
    linear = torch.nn.Linear(in_features=4, out_features=3, device=None, dtype=None).double()
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(layer.params["W"].T.copy()))
        linear.bias.copy_(torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64))
    layer.params["b"][...] = [0.1, -0.2, 0.3]
    X = np.random.default_rng(0).normal(size=(5, 4))
    Y, dX, dY = torch_reference(linear, X, seed=1)
    np.testing.assert_allclose(layer.forward(X), Y, rtol=1e-12)
    np.testing.assert_allclose(layer.backward(dY), dX, rtol=1e-12)
    np.testing.assert_allclose(layer.grads["W"], linear.weight.grad.numpy().T, rtol=1e-12)


@pytest.mark.parametrize("make, words", [
    (lambda: gpubp.Dense(4, 3, in_features=4), r"Dense: n_in and in_features \(PyTorch's name\) are one argument, "
                                               r"given twice"),
    (lambda: gpubp.Dense(in_features=4), r"Dense needs n_out, the input and output widths.*out_features"),
    (lambda: gpubp.Dense(), r"Dense needs n_in and n_out"),
    (lambda: gpubp.Dense(4, 3, device="cuda"), r"Dense does not support device='cuda': give backend="),
    (lambda: gpubp.Dense(4, 3, dtype="float64"), r"Dense does not support dtype='float64': give backend="),
    (lambda: gpubp.Dense(4, 3, bais=False), r"Dense got an unexpected keyword argument 'bais'"),
    (lambda: gpubp.nn.layer_from_config({"type": "Dense", "n_in": 3, "n_out": 2, "junk": 1}),
     r"Dense got an unexpected keyword argument 'junk'")])
def test_other_arguments_are_refused_naming_them(make, words):
    with pytest.raises(InvalidValueError, match=words):
        make()
