"""A layer moved as a model is: ``layer.to("float64")``, ``layer.to(np.float64)``, PyTorch's
``layer.to(torch.float64)`` re-type it on its device, and ``to(device, dtype)`` takes a dtype as
``Sequential.to`` does; a model takes PyTorch's dtypes too. Was: "unknown device 'float64'" for a
layer (the model took it), a TypeError for ``layer.to("cpu", "float64")``, and "unknown device
'torch.float64'" for both."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import DTypeError

F32 = gpubp.get_backend("cpu", "float32")


def torch_dtype(name):
    return getattr(pytest.importorskip("torch"), name)


@pytest.mark.parametrize("call", [
    lambda layer: layer.to("float64"), lambda layer: layer.to(np.float64),
    lambda layer: layer.to(torch_dtype("float64")), lambda layer: layer.to("cpu", "float64"),
    lambda layer: layer.to(F32, torch_dtype("float64"))],
    ids=["name", "numpy", "torch", "device and dtype", "backend and torch dtype"])
def test_a_dtype_re_types_a_layer_on_its_device(call):
    layer = gpubp.Dense(4, 3, seed=0, backend=F32)
    W = layer.params["W"].astype(np.float64)
    assert call(layer) is layer
    assert layer.backend == gpubp.get_backend("cpu", "float64")
    np.testing.assert_array_equal(layer.params["W"], W)
    assert layer.forward(np.ones((2, 4))).dtype == np.float64


def test_a_device_alone_keeps_the_layer_s_dtype():
    layer = gpubp.Dense(4, 3, backend="cpu/float64").to("cpu")
    assert layer.backend.dtype == np.float64


@pytest.mark.parametrize("name", ["float16", "int64"])
def test_a_dtype_gpubp_lacks_is_refused_by_name_leaving_the_layer(name):
    layer = gpubp.Dense(4, 3, backend=F32)
    with pytest.raises(DTypeError, match=f"dtype must be float32 or float64, got .*{name}"):
        layer.to(np.dtype(name))
    assert layer.backend == F32


@pytest.mark.parametrize("call", [lambda m: m.to(torch_dtype("float64")), lambda m: m.to("cpu", torch_dtype("float64"))],
                         ids=["alone", "as dtype"])
def test_a_model_takes_pytorch_s_dtype(call):
    model = gpubp.Sequential([gpubp.Dense(4, 3)], seed=0)
    assert call(model).backend == gpubp.get_backend("cpu", "float64")
