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


@pytest.mark.parametrize("fraction, held", [(0.1, 30), (0.2, 60), (0.5, 150)])
def test_a_stratified_split_of_small_classes_holds_out_the_fraction(fraction, held):
    # was: each class's share rounded alone: none of 100 classes of 3 at 0.1, a third of them at 0.2
    y = np.repeat(np.arange(100), 3)
    Xtr, ytr, Xte, yte = split(np.arange(300.0)[:, None], y, fraction, 0, stratify=True)
    assert len(Xte) == held and np.bincount(yte, minlength=100).max() <= 2
    assert sorted(np.concatenate([Xtr, Xte]).ravel()) == list(range(300))


def test_a_stratified_split_of_distinct_targets_draws_its_test_side_at_random():
    # was: every target its own group of one, rounded to none; given the same remainders, the test side
    # is drawn at random, not the smallest targets
    y = np.arange(50.0)
    tests = [split(np.zeros((50, 1)), y, 0.2, seed, stratify=True)[3] for seed in range(5)]
    assert all(len(t) == 10 for t in tests) and any(t.min() > 0 for t in tests)
    assert len({tuple(t) for t in tests}) > 1
