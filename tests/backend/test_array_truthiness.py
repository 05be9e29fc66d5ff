"""An array given where a dtype or a flag belongs: a gpubp error naming the argument, not NumPy's
"the truth value of an array ... is ambiguous" from ``dtype or "float32"`` / ``if check``."""
import numpy as np
import pytest

import gpubp
from gpubp.backend import default_device, get_backend
from gpubp.errors import DTypeError, InvalidValueError

ARRAYS = [np.array([]), np.ones((2, 3), dtype=np.int8)]


@pytest.mark.parametrize("junk", ARRAYS)
@pytest.mark.parametrize("call", [
    lambda d: get_backend("cpu", dtype=d),
    lambda d: gpubp.Sequential([gpubp.Dense(2, 2)], dtype=d),
    lambda d: gpubp.mlp(2, [3], 2, dtype=d),
    lambda d: gpubp.mlp(2, [3], 2).to("cpu", dtype=d),
])
def test_an_array_as_dtype_is_a_dtype_error(call, junk):
    with pytest.raises(DTypeError, match="dtype must be float32 or float64"):
        call(junk)


@pytest.mark.parametrize("junk", ARRAYS + ["yes"])
def test_default_device_check_must_be_a_flag(junk):
    with pytest.raises(InvalidValueError, match="check must be True or False"):
        default_device(check=junk)


def test_default_device_still_takes_its_flags():
    assert default_device() == default_device(check=True) == default_device(check=np.bool_(False))
