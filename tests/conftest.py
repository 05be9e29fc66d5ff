"""Shared fixtures: every backend-parametrised test runs on NumPy always and on
CuPy where a CUDA device works; elsewhere the CuPy cases are *reported* as skipped
(the device list and the GPU marker live in helpers.py)."""
import os

if os.environ.get("GPUBP_FAKE_CUPY") == "1":  # a dress rehearsal of the CuPy paths (tests/fake_cupy.py)
    import fake_cupy
    fake_cupy.install()
    site = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_gpu_site")  # and in the processes tests start
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [site, os.environ.get("PYTHONPATH")]))

import pytest  # noqa: E402

import gpubp  # noqa: E402
from helpers import DEVICES, GPU_OK  # noqa: E402


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture
def backend(device, dtype):
    return gpubp.get_backend(device, dtype)


@pytest.fixture(autouse=True)
def cpu_unless_marked_gpu(request, monkeypatch):
    """On a machine with a working GPU, "auto" picks it; a test not marked gpu holds the CPU's
    NumPy arrays and expectations, so its default device is the CPU there too (GPUBP_DEVICE, also
    for the commands it runs). A test of the default itself sets or deletes GPUBP_DEVICE."""
    if GPU_OK and request.node.get_closest_marker("gpu") is None and "GPUBP_DEVICE" not in os.environ:
        monkeypatch.setenv("GPUBP_DEVICE", "cpu")
