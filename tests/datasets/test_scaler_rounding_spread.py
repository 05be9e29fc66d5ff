"""A feature column whose values differ by a rounding step: was standardised by that step (a new value
2.0 of [1.0, nextafter(1.0)] scaled to 6.4e15, of [1.0, 1.0000001] in float32 to 1.7e7); now constant."""
import warnings

import numpy as np
import pytest

import gpubp.datasets.scaler as scaler_module
from gpubp.datasets import Scaler, load_table

ROUNDING_STEPS = 16  # the docstring's


def test_the_rounding_steps_are_the_documented_ones():
    assert getattr(scaler_module, "ROUNDING_STEPS", None) == ROUNDING_STEPS
    assert f"``ROUNDING_STEPS`` ({ROUNDING_STEPS})" in " ".join(Scaler.fit.__doc__.split())


@pytest.mark.parametrize("column, dtype", [
    ([1.0, 1.0000001], np.float32), ([1.0, np.nextafter(1.0, 2.0)], np.float64),
    ([1.0, np.nextafter(np.float32(1.0), np.float32(2.0))], np.float32), ([0.0, 5e-324], np.float64),
    ([-3.0, -3.0 + ROUNDING_STEPS * np.spacing(3.0)], np.float64), ([1e300, np.nextafter(1e300, 0)], np.float64),
    ([1.0, 1.002], np.float16),
])
def test_a_spread_of_rounding_is_a_constant_column(column, dtype):
    X = np.array(column, dtype)[:, None].repeat(3, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scaler = Scaler.fit(X)
        assert scaler.std.tolist() == [1.0]
        for new in (X, np.array([[2.0]]), np.array([[-7.5]])):
            out = scaler(new)
            assert np.isfinite(out).all() and np.abs(out).max() <= np.abs(new.astype(np.float64) - scaler.mean).max() + 1e-12


@pytest.mark.parametrize("column, dtype", [
    ([1.0, 1.0000001], np.float64),  # a CSV's 1.0000001: 450 million float64 steps, a real spread
    ([1.0, 1.0 + (ROUNDING_STEPS + 1) * np.spacing(1.0)], np.float64),
    ([1e-10, 2e-10], np.float32), ([1.0, 1.0001], np.float32), ([0.0, 1e-300], np.float64),
])
def test_a_spread_beyond_rounding_is_standardised(column, dtype):
    X = np.array(column, dtype)[:, None]
    scaler = Scaler.fit(X)
    assert scaler.std[0] != 1.0 and np.allclose(np.abs(scaler(X)), 1.0, atol=0.1)


def test_a_column_of_one_value_keeps_that_value_as_its_mean():
    scaler = Scaler.fit(np.array([[0.1, 1.0], [0.1, 1.0 + np.spacing(1.0)], [0.1, 1.0]]))
    assert scaler.mean[0] == 0.1 and scaler.std.tolist() == [1.0, 1.0] and 1.0 <= scaler.mean[1] <= 1.0 + 2e-16


def test_a_tables_precision_is_its_files_float_type(tmp_path):
    """An .npz's float32 X is read as float64; ``precision`` keeps float32, whose rounding Scaler.fit then sees."""
    X = np.array([[1.0, 0.0], [1.0000001, 1.0], [1.0, 2.0]], np.float32)
    np.savez(tmp_path / "f32.npz", X=X, y=np.array([0, 1, 0]))
    (tmp_path / "d.csv").write_text("a,b,y\n1.0,0,0\n1.0000001,1,1\n")
    table = load_table(tmp_path / "f32.npz")
    assert table.X.dtype == np.float64 and table.precision is np.float32
    assert load_table(tmp_path / "d.csv").precision is np.float64
    assert Scaler.fit(table.X.astype(table.precision)).std[0] == 1.0 and Scaler.fit(table.X).std[0] != 1.0
