"""Backend.host_rng's seed checked as every other seed (found by fuzzing the public API): before,
NumPy's TypeError 'SeedSequence expects int ...' or ValueError 'expected non-negative integer'."""
import numpy as np
import pytest

from gpubp.backend import Backend
from gpubp.errors import InvalidValueError
from helpers import stable_id


@pytest.mark.parametrize("seed", ["x", -1, 1.5, float("nan"), float("inf"), True, {}, [], object(),
                                  np.array([[np.nan]]), np.array(["a"])], ids=stable_id)
def test_host_rng_refuses_a_seed_that_is_none(seed):
    with pytest.raises(InvalidValueError, match="seed must be a whole number >= 0"):
        Backend.host_rng(seed)


def test_host_rng_takes_its_seeds():
    g = np.random.default_rng(3)
    assert Backend.host_rng(g) is g
    assert Backend.host_rng(5).integers(100) == np.random.default_rng(5).integers(100)
    assert isinstance(Backend.host_rng(None), np.random.Generator)
    assert Backend.host_rng(np.int64(7)).integers(100) == np.random.default_rng(7).integers(100)
