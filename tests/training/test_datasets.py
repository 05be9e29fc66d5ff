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


@pytest.mark.parametrize("X, y, words", [
    (np.zeros(3), 3, r"split: X and y need one row per sample, got shapes \(3,\) and \(\)"),  # was: TypeError
    (np.zeros((0, 2)), np.zeros(0), "split: X and y hold no samples"),  # was: concatenate error when stratified
])
def test_split_refuses_what_has_no_samples(X, y, words):
    from gpubp.datasets import split
    from gpubp.errors import InvalidValueError
    with pytest.raises(InvalidValueError, match=words):
        split(X, y, 0.5, 0, stratify=True)


def test_split_takes_lists_and_a_fraction_of_one_is_named_consistently():
    from gpubp.datasets import split
    from gpubp.errors import InvalidValueError
    parts = split([[1.0], [2.0], [3.0], [4.0]], [0, 1, 0, 1], 0.5, 0)  # was: TypeError indexing a list by a mask
    assert [np.shape(p) for p in parts] == [(2, 1), (2,), (2, 1), (2,)]
    with pytest.raises(InvalidValueError, match="test_fraction must be a finite number > 0 and < 1, got 1"):
        split(np.zeros((4, 1)), np.zeros(4), 1, 0)  # was: "... and <= 1" in the message for 1.5, refused at 1


@pytest.mark.parametrize("y", [np.array([0, 0, np.nan, np.nan, 1, 1, np.nan, np.nan]),
                               np.eye(2)[[0, 0, 1, 1, 0, 1, 0, 1]]],
                         ids=["NaN labels", "one-hot rows"])
def test_a_stratified_split_keeps_every_sample_and_the_fraction(y):
    from gpubp.datasets import split
    Xtr, ytr, Xte, yte = split(np.arange(8.0)[:, None], y, 0.5, 0, stratify=True)
    # was: NaN labels matched no group and left the test side empty; one-hot rows raised IndexError
    assert sorted(np.concatenate([Xtr, Xte]).ravel()) == list(range(8)) and len(Xte) == 4
