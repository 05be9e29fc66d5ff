"""CUDA out-of-memory becomes gpubp's OutOfMemoryError saying how much was asked and what to do.

The CPU test drives CupyBackend.activate() with a stand-in for CuPy's exception class,
so the translation path runs on every machine; the gpu-marked test asks a real device
for more memory than it has.
"""
import types

import pytest

import gpubp
from gpubp.backend import cupy_backend
from gpubp.errors import OutOfMemoryError

from helpers import needs_gpu


class FakeCupyOOM(Exception):
    pass


def test_oom_translation_without_a_gpu(monkeypatch):
    class Device:
        def __init__(self, i):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False
    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(Device=Device,
                                                            memory=types.SimpleNamespace(OutOfMemoryError=FakeCupyOOM)))
    monkeypatch.setattr(cupy_backend, "cupy", fake)
    backend = cupy_backend.CupyBackend.__new__(cupy_backend.CupyBackend)
    backend.device_id, backend.device = 0, "cuda:0"
    with pytest.raises(OutOfMemoryError, match=r"cuda:0 ran out of memory: Out of memory allocating 8,589,934,592 "
                                               r"bytes.*smaller batch size") as err:
        with backend.activate():
            raise FakeCupyOOM("Out of memory allocating 8,589,934,592 bytes (allocated so far: 0 bytes).")
    assert isinstance(err.value, MemoryError) and isinstance(err.value, gpubp.GpubpError)


@needs_gpu
def test_real_oom_on_a_gpu():
    backend = gpubp.get_backend("cuda:0", "float32")
    with pytest.raises(OutOfMemoryError, match="ran out of memory"):
        backend.zeros((1 << 40,))  # 4 TiB


@needs_gpu
def test_model_on_cuda1_refuses_arrays_on_cuda0():
    import cupy
    if cupy.cuda.runtime.getDeviceCount() < 2:
        pytest.skip("needs two GPUs")
    model = gpubp.Sequential([gpubp.Dense(3, 2)], backend="cuda:1")
    with pytest.raises(gpubp.DeviceError, match="expected an array on cuda:1, got a CuPy array on cuda:0"):
        model.forward(gpubp.get_backend("cuda:0").asarray([[1.0, 2.0, 3.0]]))
