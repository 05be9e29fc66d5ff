"""CupyBackend's capture refuses allocations from CuPy's memory pool, and its write takes what
NumPy's does. The CPU half binds gpubp's code to CuPy's real memory-hook machinery and to the
contract of ``cupy.ndarray.set`` (read in cupy/_core/core.pyx, CuPy 14.2); the gpu half runs it.

Why refuse: CuPy begins a capture in relaxed mode so that its pool may allocate during it
(cupy/cuda/stream.pyx, begin_capture), but a graph keeps every address it was recorded with. An
array allocated inside the capture and then dropped goes back to the pool, which lends it to the
next array; every replay would write over that array.
"""
import contextlib
import inspect

import numpy as np
import pytest

from gpubp._compat import cupy, cupy_import_error, has_cupy
from gpubp.errors import StateError

from fake_cupy import check_set
from helpers import needs_gpu

pytestmark = pytest.mark.skipif(not has_cupy, reason=f"CuPy is not installed ({cupy_import_error})")


def pool_malloc(size=512):
    """What CuPy's SingleDeviceMemoryPool.malloc does first (cupy/cuda/memory.pyx): each registered
    hook's malloc_preprocess, with these keywords."""
    from cupy.cuda import memory_hook
    for hook in memory_hook.get_memory_hooks().values():
        hook.malloc_preprocess(device_id=0, size=size, mem_size=size)


def test_the_hook_is_a_cupy_memory_hook_registered_only_while_entered():
    from cupy.cuda import memory_hook
    from gpubp.backend.cupy_backend import no_allocation
    hook = no_allocation("cuda:0")
    assert isinstance(hook, cupy.cuda.MemoryHook)
    assert "kwargs" in inspect.signature(hook.malloc_preprocess).parameters or \
        {"device_id", "size", "mem_size"} <= set(inspect.signature(hook.malloc_preprocess).parameters)
    pool_malloc()  # nothing registered: allowed
    with hook:
        assert hook.name in memory_hook.get_memory_hooks()
        with pytest.raises(StateError, match="cuda:0 for 512 bytes"):
            pool_malloc(512)
        hook.free_preprocess(device_id=0, mem_size=512, mem_ptr=1, pmem_id=1)  # freeing stays allowed
    assert hook.name not in memory_hook.get_memory_hooks()
    pool_malloc()


class FakeStream:
    """A stream as capture uses it: a context and begin/end_capture, recording the calls."""

    def __init__(self):
        self.calls = []

    def __enter__(self):
        self.calls.append("enter")
        return self

    def __exit__(self, *exc):
        self.calls.append("exit")

    def begin_capture(self):
        self.calls.append("begin")

    def end_capture(self):
        self.calls.append("end")
        return "graph"


@pytest.fixture
def backend(monkeypatch):
    from gpubp.backend.cupy_backend import CupyBackend
    monkeypatch.setattr(CupyBackend, "activate", lambda self: contextlib.nullcontext())  # no device here
    return CupyBackend(0)


def test_capture_refuses_an_allocation_inside_and_ends_the_capture(backend):
    from cupy.cuda import memory_hook
    stream = FakeStream()
    with pytest.raises(StateError, match="captured step asked CuPy's memory pool"):
        backend.capture(pool_malloc, stream)
    assert stream.calls == ["enter", "begin", "end", "exit"]
    assert not memory_hook.get_memory_hooks()  # unregistered after the error too
    stream = FakeStream()
    assert backend.capture(lambda: None, stream) == "graph"
    assert stream.calls == ["enter", "begin", "end", "exit"] and not memory_hook.get_memory_hooks()


class FakeDeviceArray:
    """The parts of cupy.ndarray that CupyBackend.write uses, ``set`` with CuPy 14's checks."""

    def __init__(self, shape, dtype="float32", contiguous=True):
        self.values = np.zeros(shape, dtype)
        self.shape, self.dtype = self.values.shape, self.values.dtype
        self.flags = type("Flags", (), {"c_contiguous": contiguous, "f_contiguous": False})()

    def set(self, arr, stream=None):
        check_set(self, arr)  # CuPy's checks, as the CuPy stand-in makes them
        self.values[...] = np.ascontiguousarray(arr)


def test_write_broadcasts_as_numpy_does_before_cupys_set(backend):
    dst = FakeDeviceArray((3,))
    backend.write(dst, 0.1)  # NumPy's write: dst[...] = 0.1; CuPy's set takes only shape (3,)
    assert dst.values.tolist() == [np.float32(0.1)] * 3
    backend.write(dst, (1.0, 2.0, 3.0))
    assert dst.values.tolist() == [1.0, 2.0, 3.0]


def test_write_refuses_values_that_do_not_fit_in_gpubps_words(backend):
    from gpubp.errors import ShapeError
    with pytest.raises(ShapeError, match="write"):
        backend.write(FakeDeviceArray((3,)), (1.0, 2.0))


@needs_gpu
def test_a_real_capture_refuses_an_allocation_and_the_stream_works_after():
    from gpubp.backend import get_backend
    backend = get_backend("cuda:0", "float32")
    stream = backend.stream()
    a = backend.zeros(8)
    with pytest.raises(StateError, match="memory pool"):
        backend.capture(lambda: a + 1, stream)  # a + 1 allocates its result
    assert not stream.is_capturing()
    a += 1  # compiles and loads the kernel before the capture, as GraphedStep's warm-up does
    a.fill(0)
    graph = backend.capture(lambda: a.__iadd__(1), stream)  # in place: nothing allocated
    for _ in range(3):
        graph.launch(stream)
    stream.synchronize()
    assert backend.to_numpy(a).tolist() == [3.0] * 8


@needs_gpu
def test_a_real_write_broadcasts_and_fills_a_strided_array():
    from gpubp.backend import get_backend
    backend = get_backend("cuda:0", "float32")
    a = backend.zeros(6)
    backend.write(a, 0.5)
    backend.write(a[::2], (1.0, 2.0, 3.0))
    backend.synchronize()
    assert backend.to_numpy(a).tolist() == [1.0, 0.5, 2.0, 0.5, 3.0, 0.5]
