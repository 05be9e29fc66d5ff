"""Shared fixtures: every backend-parametrised test runs on NumPy always and on
CuPy where a CUDA device works; elsewhere the CuPy cases are *reported* as skipped
(the device list and the GPU marker live in helpers.py)."""
import pytest

import gpubp
from helpers import DEVICES


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture
def backend(device, dtype):
    return gpubp.get_backend(device, dtype)
