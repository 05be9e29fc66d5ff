"""A Scaler fitted on no features, and its statistics changed in place: a misleading message and
checks gone round before the fix."""
import copy
import pickle

import numpy as np
import pytest

from gpubp.datasets import Scaler
from gpubp.errors import ShapeError


def test_scaler_of_no_features_says_so():
    with pytest.raises(ShapeError, match=r"Scaler.fit: X of shape \(3, 0\) holds no feature per sample"):
        Scaler.fit(np.zeros((3, 0)))  # was: "Scaler: 0 means but 0 stds"


def test_scaler_statistics_cannot_be_changed_in_place():
    # was: scaler.std[0] = 0 went past the checks of Scaler(), and a given array stayed tied to the Scaler
    mean, std = np.array([1.0, 2.0]), np.array([1.0, 2.0])
    scaler = Scaler(mean, std)
    std[0] = 0.0
    assert scaler.std.tolist() == [1.0, 2.0] and std.flags.writeable  # the caller's array: theirs, still writable
    fitted = Scaler.fit(np.arange(6.0).reshape(3, 2))
    for s in (scaler, fitted, pickle.loads(pickle.dumps(fitted)), copy.deepcopy(fitted)):
        with pytest.raises(ValueError, match="read-only"):
            s.std[0] = 0.0
        with pytest.raises(ValueError, match="read-only"):
            s.mean[0] = np.nan
    assert pickle.loads(pickle.dumps(fitted)).to_dict() == fitted.to_dict()
