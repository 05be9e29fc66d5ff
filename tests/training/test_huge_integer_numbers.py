"""An integer beyond float's range where a number is asked (SGD(lr=10**400), a schedule's rate):
a gpubp error naming the argument. Was: Python's raw OverflowError from float()."""
import pytest

import gpubp
from gpubp import _checks
from gpubp.errors import InvalidValueError


@pytest.mark.parametrize("make", [lambda: gpubp.optim.SGD(lr=10**400), lambda: gpubp.optim.Adam(lr=1e-3, eps=-10**400),
                                  lambda: _checks.number("scale", 10**5000)], ids=["lr", "eps", "scale"])
def test_an_integer_beyond_floats_range_is_named(make):
    with pytest.raises(InvalidValueError, match=r"must be a finite number.*got an integer beyond float's range"):
        make()
