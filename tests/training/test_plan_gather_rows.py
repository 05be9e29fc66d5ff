"""StepPlan.gather refuses X and y of different lengths, and indices out of range. Was: the indices read y past its end, clipped
(NumPy) or wrapped (CuPy) to other samples' targets, so the batch paired samples with wrong targets, silently."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError, ShapeError
from gpubp.plan import StepPlan
from helpers import DEVICES


@pytest.mark.parametrize("x_rows, y_rows", [(6, 4), (4, 6)])
def test_gather_refuses_x_and_y_of_different_lengths(x_rows, y_rows):
    model = gpubp.Sequential([gpubp.Dense(2, 3)], seed=0)
    plan = StepPlan(model, "mse", "sgd", (4, 2))
    X, y = np.zeros((x_rows, 2), np.float32), np.arange(y_rows * 3, dtype=np.float32).reshape(y_rows, 3)
    with pytest.raises(ShapeError, match=f"X has {x_rows} samples and y {y_rows}; give one target per sample"):
        plan.gather(X, y, np.array([0, 1, 2, 3]))
    assert not plan.y.any()  # nothing gathered


def test_gather_of_matching_lengths_takes_the_rows_asked_for():
    model = gpubp.Sequential([gpubp.Dense(2, 3)], seed=0)
    plan = StepPlan(model, "mse", "sgd", (2, 2))
    X, y = np.arange(10, dtype=np.float32).reshape(5, 2), np.arange(15, dtype=np.float32).reshape(5, 3)
    Xb, yb = plan.gather(X, y, np.array([4, 1]))
    np.testing.assert_array_equal(Xb, X[[4, 1]])
    np.testing.assert_array_equal(yb, y[[4, 1]])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("idx, words", [([4, 5], "got indices from 4 to 5"), ([-1, 0], "got indices from -1 to 0")])
def test_gather_refuses_indices_out_of_range(device, idx, words):
    """Was: trusted; NumPy's take clipped 5 to 4 and -1 to 0, CuPy's wraps: other samples, silently."""
    backend = gpubp.get_backend(device, "float32")
    model = gpubp.Sequential([gpubp.Dense(2, 3)], backend=backend, seed=0)
    plan = StepPlan(model, "mse", "sgd", (2, 2))
    X, y = (backend.asarray(np.arange(n, dtype=np.float32).reshape(5, -1)) for n in (10, 15))
    with pytest.raises(InvalidValueError, match=rf"idx must lie in \[0, 5\) \(X has 5 samples\), {words}"):
        plan.gather(X, y, backend.xp.asarray(np.array(idx)))
    assert not backend.to_numpy(plan.y).any()  # nothing gathered
