"""Shared fixtures: every backend-parametrised test runs on NumPy always and on
CuPy where a CUDA device works; elsewhere the CuPy cases are *reported* as skipped."""
import numpy as np
import pytest

from gpubp._compat import gpu_status
from gpubp.tolerance import POLICY

GPU_OK, GPU_REASON = gpu_status(0)

DEVICES = [
    pytest.param("cpu", id="cpu"),
    pytest.param("cuda:0", id="gpu", marks=[
        pytest.mark.gpu, pytest.mark.skipif(not GPU_OK, reason=f"no usable GPU: {GPU_REASON}")]),
]

# Elementwise tolerances for tests, by dtype, from gpubp's one precision policy
# (gpubp/tolerance.py): float64 agrees to ~1e-10 relative (BLAS libraries sum in
# different orders), float32 to ~1e-5; atol covers entries that cancel to ~0.
TOL = {dt: dict(rtol=p.rtol, atol=p.rtol / 10) for dt, p in POLICY.items()}


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture
def backend(device, dtype):
    import gpubp
    return gpubp.get_backend(device, dtype)
