"""spirals with a noise of -0.0 or one that overflows, split of ragged rows: raw NumPy errors or
points at infinity before the fix."""
import numpy as np
import pytest

from gpubp.datasets import spirals, split
from gpubp.errors import InvalidValueError


def test_spirals_noise_negative_zero_and_overflowing():
    X = spirals(n=8, noise=-0.0, test_fraction=0.5)[0]  # was: NumPy's ValueError "scale < 0"
    assert np.array_equal(X, spirals(n=8, noise=0.0, test_fraction=0.5)[0])
    with pytest.raises(InvalidValueError, match="noise=1e[+]308 throws points beyond float64's range"):
        spirals(noise=1e308)  # was: points at +-inf, returned without a word


@pytest.mark.parametrize("X, y, which", [([[1], [2, 3]], [0, 1], "X"), ([[1], [2]], [[0], [1, 2]], "y")])
def test_split_of_ragged_rows_is_refused(X, y, which):
    # was: NumPy's ValueError "setting an array element with a sequence ... inhomogeneous shape"
    with pytest.raises(InvalidValueError, match=f"split: {which} must be an array, or a list of rows of one length"):
        split(X, y, 0.5, 0, stratify=True)
