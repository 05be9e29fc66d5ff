import numpy as np
import pytest

from gpubp.datasets import house_price, load_dataset, load_digits, spirals, xor


def test_digits_is_the_uci_set():
    Xtr, ytr, Xte, yte = load_digits()
    X, y = np.concatenate([Xtr, Xte]), np.concatenate([ytr, yte])
    assert X.shape == (1797, 64) and X.dtype == np.float64 and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    assert set(np.unique(y)) == set(range(10))
    assert np.bincount(y).min() >= 170  # about 180 images per digit


def test_digits_split_is_deterministic_and_stratified():
    a, b, c = load_digits(seed=1), load_digits(seed=1), load_digits(seed=2)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], c[0])
    assert 350 <= len(a[3]) <= 370
    assert np.ptp(np.bincount(a[3])) <= 2


def test_generators():
    X, y, _, _ = xor()
    np.testing.assert_array_equal(y, (X[:, 0] != X[:, 1]).astype(int))
    Xtr, ytr, Xte, yte = spirals(n=200, seed=3)
    assert len(Xtr) + len(Xte) == 200 and set(np.unique(ytr)) == {0, 1}
    X, y, _, _ = house_price()
    assert X[0, 0] == 2.0 and y[0, 0] == 100.0


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("mnist")


@pytest.mark.parametrize("load", [lambda: load_digits(test_fraction=0.9999), lambda: load_digits(test_fraction=1e-9),
                                  lambda: spirals(n=10, test_fraction=0.01), lambda: spirals(n=2)],
                         ids=["no training sample", "no test sample", "spirals, no test", "two points"])
def test_a_split_with_an_empty_side_is_refused(load):
    from gpubp.errors import InvalidValueError
    with pytest.raises(InvalidValueError, match="each needs at least one"):  # was: an empty array, silently
        load()


def test_split_names_x_and_y_of_different_lengths():
    from gpubp.datasets import split
    from gpubp.errors import InvalidValueError
    with pytest.raises(InvalidValueError, match="5 samples but y has 4"):  # was: IndexError from NumPy
        split(np.zeros((5, 2)), np.zeros(4), 0.2, 0)
