"""Built-in data, shipped inside the package: nothing is ever downloaded.

- ``load_digits``: 1,797 8x8 handwritten digits, 10 classes. Source: UCI Optical
  Recognition of Handwritten Digits (Alpaydin & Kaynak, 1998), CC BY 4.0 (see
  DIGITS_LICENSE.txt beside this file).
- ``xor``, ``spirals``: small generated binary problems.
- ``house_price``: the seeds' one-sample toy (a 2,000 sq ft house at $100k: x = 2, y = 100).
- ``load_table`` (files.py): your own CSV (header row, a target column; UTF-8, gzip-compressed too)
  or ``.npz`` (X, y);
  ``Scaler`` (scaler.py) standardises features with the training split's mean and std.

Every built-in loader (``load_digits``, ``xor``, ``spirals``, ``house_price``, ``load_dataset``)
returns ``(X_train, y_train, X_test, y_test)`` as NumPy arrays: float64 features, int64 class
labels (float64 targets for regression); ``load_table`` returns a ``Table``.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from .._checks import flag, integer, number, unmasked
from ..errors import InvalidValueError
from .files import Table, load_table  # noqa: F401  (your own data)
from .scaler import Scaler, on_device  # noqa: F401

HERE = Path(__file__).parent


def load_digits(test_fraction=0.2, seed=0):
    """Digits scaled to [0, 1]; a stratified split drawn from ``seed``."""
    with gzip.open(HERE / "digits.csv.gz", "rt") as f:
        data = np.loadtxt(f, delimiter=",")
    X, y = data[:, :64] / 16.0, data[:, 64].astype(np.int64)
    return _both_sides(split(X, y, test_fraction, seed, stratify=True), test_fraction)


def xor():
    """The four XOR points; train and test are the same four."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    y = np.array([0, 1, 1, 0], dtype=np.int64)
    return X, y, X.copy(), y.copy()


def spirals(n=400, noise=0.1, seed=0, test_fraction=0.25):
    """Two interleaved spirals (n points in all), labels 0 and 1."""
    integer("spirals: n", n, minimum=2)
    noise = abs(number("spirals: noise", noise, low=0))  # -0.0 as 0.0: NumPy's normal refused it ("scale < 0")
    rng = np.random.default_rng(integer("spirals: seed", seed, minimum=0))
    try:
        t = np.sqrt(rng.uniform(0, 1, n)) * 3 * np.pi
    except (ValueError, MemoryError, OverflowError):  # NumPy's "Maximum allowed dimension exceeded", or no room
        raise InvalidValueError(f"spirals: n={n} points is more than this machine can hold") from None
    y = np.arange(n) % 2
    sign = np.where(y == 0, 1.0, -1.0)
    X = np.stack([sign * t * np.cos(t), sign * t * np.sin(t)], axis=1) / (3 * np.pi)
    X += rng.normal(0, noise, X.shape)
    if not np.isfinite(X).all():  # was: points at +-inf, returned without a word
        raise InvalidValueError(f"spirals: noise={noise:g} throws points beyond float64's range; give a noise a few "
                                f"times the spirals' radius of 1 at most")
    return _both_sides(split(X, y.astype(np.int64), test_fraction, seed), test_fraction)


def house_price():
    """The seeds' house: x = 2.0 (thousand sq ft), y = 100.0 ($k); test = train."""
    X, y = np.array([[2.0]]), np.array([[100.0]])
    return X, y, X.copy(), y.copy()


DATASETS = {"digits": load_digits, "xor": xor, "spirals": spirals, "house_price": house_price}


def load_dataset(name, **kw):
    """A built-in dataset by name (keyword arguments go to its loader)."""
    try:
        loader = DATASETS[name]
    except (KeyError, TypeError):
        raise InvalidValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}") from None
    accepted = loader.__code__.co_varnames[:loader.__code__.co_argcount]
    unknown = sorted(set(kw) - set(accepted))
    if unknown:
        raise InvalidValueError(f"dataset {name!r} takes {list(accepted) or 'no arguments'}, got {unknown}")
    return loader(**kw)


def _both_sides(parts, test_fraction):
    """A loader's split, refused when a side is empty (it would train on nothing, or report a
    score of no test sample); ``split`` itself returns such sides for callers that handle them."""
    n_train, n_test = len(parts[1]), len(parts[3])
    if not (n_train and n_test):
        raise InvalidValueError(f"test_fraction {test_fraction:g} of {n_train + n_test} samples leaves {n_test} for "
                                f"testing and {n_train} for training; each needs at least one")
    return parts


def split(X, y, test_fraction, seed, stratify=False):
    """Deterministic train/test split of arrays (or lists) with one row per sample; stratified
    keeps the proportions of each distinct label (or target row). The test side holds
    ``round(N * test_fraction)`` samples, stratified or not, and may be empty when that rounds to
    none. Each part keeps the given dtype; a masked array with masked values is refused (its mask
    would be lost)."""
    test_fraction = number("test_fraction", test_fraction, low=0, high=1, low_open=True, high_open=True)
    rng = np.random.default_rng(integer("seed", seed, minimum=0))
    X, y = _array("split: X", X), _array("split: y", y)
    if X.ndim == 0 or y.ndim == 0:
        raise InvalidValueError(f"split: X and y need one row per sample, got shapes {X.shape} and {y.shape}")
    if len(X) != len(y):
        raise InvalidValueError(f"split: X has {len(X)} samples but y has {len(y)}")
    if not len(y):
        raise InvalidValueError("split: X and y hold no samples")
    groups = [np.arange(len(y))]
    if flag("stratify", stratify):  # every sample in the group of its label (NaN labels form one group)
        try:
            labels, which = np.unique(y, return_inverse=True, axis=None if y.ndim == 1 else 0)
        except TypeError:
            raise InvalidValueError(f"split: cannot stratify by y of dtype {y.dtype}; give numbers or text") from None
        groups = [np.flatnonzero(which.reshape(-1) == k) for k in range(len(labels))]
    shuffled = [rng.permutation(g) for g in groups]
    counts = _test_counts(np.array([len(g) for g in groups]), test_fraction, rng)
    test = np.concatenate([g[:k] for g, k in zip(shuffled, counts)])
    mask = np.zeros(len(y), dtype=bool)
    mask[test] = True
    return X[~mask], y[~mask], X[mask], y[mask]


def _test_counts(sizes, fraction, rng) -> np.ndarray:
    """How many samples of each group go to the test side: ``round(N * fraction)`` in all, each group
    its size times the fraction rounded down, and the samples left over one each to the groups of the
    largest remainders (ties drawn at random). Was: each group's share rounded alone, so 100 classes of
    3 samples held out none at 0.1 (30 asked; the CLI said it "rounds to none") and a third at 0.2."""
    quota = sizes * fraction
    counts = np.floor(quota).astype(np.int64)
    order = np.lexsort((rng.random(len(sizes)), counts - quota))  # the largest remainder first
    counts[order[:max(round(quota.sum()) - int(counts.sum()), 0)]] += 1
    return np.minimum(counts, sizes)


def _array(name, value) -> np.ndarray:
    """``value`` as an array; masked values refused, and rows of different lengths (NumPy's ValueError
    "inhomogeneous shape" was raised as it was)."""
    unmasked(name, value)
    on_device(name, value)
    try:
        return np.asarray(value)
    except ValueError:
        raise InvalidValueError(f"{name} must be an array, or a list of rows of one length each, got "
                                f"{value!r:.60}") from None
