"""Shared fixtures: every backend-parametrised test runs on NumPy always and on
CuPy where a CUDA device works; elsewhere the CuPy cases are *reported* as skipped."""
import numpy as np
import pytest

from gpubp._compat import gpu_status

GPU_OK, GPU_REASON = gpu_status(0)

DEVICES = [
    pytest.param("cpu", id="cpu"),
    pytest.param("cuda:0", id="gpu", marks=[
        pytest.mark.gpu, pytest.mark.skipif(not GPU_OK, reason=f"no usable GPU: {GPU_REASON}")]),
]

# Parity tolerances, by dtype: float64 agrees to ~1e-10 relative (summation order
# differs between BLAS libraries), float32 to ~1e-5 (a few ulps over a reduction).
TOL = {np.dtype(np.float64): dict(rtol=1e-10, atol=1e-12),
       np.dtype(np.float32): dict(rtol=1e-5, atol=1e-6)}


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
