"""model.to(dtype) alone, as PyTorch's model.to(torch.float64): the model re-typed on its device (was:
"unknown device 'float64'")."""
import numpy as np
import pytest

import gpubp


@pytest.mark.parametrize("dtype", ["float64", np.float64, np.dtype("float64")])
def test_a_dtype_alone_re_types_the_model_on_its_device(dtype):
    model = gpubp.Sequential([gpubp.Dense(4, 3), gpubp.ReLU()], seed=0)
    W = model.parameters()["0.W"].astype(np.float64)
    assert model.to(dtype) is model
    assert model.backend == gpubp.get_backend("cpu", "float64")
    np.testing.assert_array_equal(model.parameters()["0.W"], W)
    assert model.forward(np.ones((2, 4))).dtype == np.float64


def test_a_dtype_gpubp_lacks_is_refused_by_name():
    model = gpubp.Sequential([gpubp.Dense(4, 3)], seed=0)
    with pytest.raises(gpubp.GpubpError, match="int64|float16"):
        model.to(np.float16)
    assert model.backend.dtype == np.float32
