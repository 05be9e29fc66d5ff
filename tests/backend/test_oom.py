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


def fake_cupy(monkeypatch, current=0):
    """CuPy's device switching and OOM class, recording each cudaSetDevice a Device block makes
    (CuPy's ``Device.__exit__`` always makes one, ``__enter__`` one when the device changes)."""
    calls = []

    class Device:
        def __init__(self, i):
            self.i = i

        def __enter__(self):
            if self.i != current:
                calls.append(self.i)
            return self

        def __exit__(self, *exc):
            calls.append(current)
            return False
    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(
        Device=Device, runtime=types.SimpleNamespace(getDevice=lambda: current),
        memory=types.SimpleNamespace(OutOfMemoryError=FakeCupyOOM)))
    monkeypatch.setattr(cupy_backend, "cupy", fake)
    backend = cupy_backend.CupyBackend.__new__(cupy_backend.CupyBackend)
    backend.device_id, backend.device = 0, "cuda:0"
    return backend, calls


def test_activate_sets_the_device_only_when_another_is_current(monkeypatch):
    """Every launch runs under activate(): on the current device it now makes no cudaSetDevice
    (one per launch before, inside a CUDA graph's capture too); from another it switches and back."""
    backend, calls = fake_cupy(monkeypatch, current=0)
    with backend.activate():
        pass
    assert calls == []
    backend, calls = fake_cupy(monkeypatch, current=1)
    with backend.activate():
        pass
    assert calls == [0, 1]


def test_oom_translation_without_a_gpu(monkeypatch):
    backend, _ = fake_cupy(monkeypatch)
    with pytest.raises(OutOfMemoryError, match=r"cuda:0 ran out of memory: Out of memory allocating 8,589,934,592 "
                                               r"bytes.*smaller batch size") as err:
        with backend.activate():
            raise FakeCupyOOM("Out of memory allocating 8,589,934,592 bytes (allocated so far: 0 bytes).")
    assert isinstance(err.value, MemoryError) and isinstance(err.value, gpubp.GpubpError)


@needs_gpu
def test_real_oom_on_a_gpu():
    backend = gpubp.get_backend("cuda:0", "float32")
    # CuPy's OutOfMemoryError is a MemoryError: the allocation's own words, as on the CPU
    with pytest.raises(OutOfMemoryError, match=r"zeros: an array of shape \(1099511627776,\) .* 4.1e\+03 GiB: more "
                                               r"than there is memory for"):
        backend.zeros((1 << 40,))  # 4 TiB


@needs_gpu
def test_model_on_cuda1_refuses_arrays_on_cuda0():
    import cupy
    if cupy.cuda.runtime.getDeviceCount() < 2:
        pytest.skip("needs two GPUs")
    model = gpubp.Sequential([gpubp.Dense(3, 2)], backend="cuda:1")
    with pytest.raises(gpubp.DeviceError, match="expected an array on cuda:1, got a CuPy array on cuda:0"):
        model.forward(gpubp.get_backend("cuda:0").asarray([[1.0, 2.0, 3.0]]))
