"""An array on the GPU given to the datasets' host helpers (Scaler, split): before the fix, the Scaler said
"must be numbers" showing what looked like a NumPy array, and split raised NumPy's TypeError."""
import numpy as np
import pytest

from gpubp.datasets import Scaler, split
from gpubp.errors import InvalidValueError


class DeviceArray:
    """What NumPy sees of a CuPy array: the CUDA array interface, and an implicit conversion refused."""

    __cuda_array_interface__ = {"shape": (2, 2), "typestr": "<f8", "data": (0, False), "version": 3}
    shape = (2, 2)

    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()`")

    def __repr__(self):
        return "array([[1., 2.],\n       [3., 4.]])"


@pytest.mark.parametrize("call, name", [
    (lambda: Scaler.fit(DeviceArray()), "Scaler.fit: X"),
    (lambda: Scaler.fit(np.ones((2, 2)))(DeviceArray()), "Scaler: X"),
    (lambda: Scaler.fit(np.ones((2, 2))).inverse(DeviceArray()), "Scaler.inverse: X"),
    (lambda: Scaler(DeviceArray(), np.ones(2)), "Scaler: mean"),
    (lambda: split(DeviceArray(), [0, 1], 0.5, 0), "split: X"),
    (lambda: split(np.ones((2, 2)), DeviceArray(), 0.5, 0), "split: y"),
])
def test_a_gpu_array_is_named_as_one(call, name):
    with pytest.raises(InvalidValueError, match=f"{name} is a .*DeviceArray on the GPU; .* x.get\\(\\) \\(CuPy\\)"):
        call()
