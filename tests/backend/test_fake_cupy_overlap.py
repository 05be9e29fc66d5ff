"""The stand-in CuPy (tests/fake_cupy.py) allocates where CuPy 14 does when an input shares memory
with an output it is not: a ufunc given ``out`` copies that input first (cupy/_core/_kernel.pyx,
``_copy_in_args_if_needed``, lines 673-683 at v14.2.0, using ``may_share_bounds`` of
cupy/_core/_memory_range.pyx), and ``a[...] = b`` and ``copyto`` copy through the ufunc
``elementwise_copy`` (cupy/_core/_routines_indexing.pyx ``_scatter_op``; cupy/_manipulation/basic.py
``copyto``). Inside a capture that copy is a pool allocation, which gpubp's capture guard refuses;
a fake that skipped it would let a captured step pass here and fail on the GPU."""
import gc

import numpy as np
import pytest

from gpubp._compat import cupy, cupy_import_error, has_cupy
from gpubp.backend.cupy_backend import CupyBackend
from gpubp.errors import StateError

from helpers import needs_gpu

pytestmark = pytest.mark.skipif(not has_cupy, reason=f"the fake reads CuPy's names: CuPy is not installed "
                                                      f"({cupy_import_error})")


@pytest.fixture(scope="module")
def fake():
    import fake_cupy
    return fake_cupy


@pytest.fixture
def mallocs(fake):
    seen = []

    class Hook(fake.module.cuda.MemoryHook):
        name = "test_fake_cupy_overlap_hook"

        def malloc_preprocess(self, **kwargs):
            seen.append(kwargs["size"])
    gc.collect()
    with Hook():
        yield seen


def test_an_input_that_is_the_output_itself_is_not_copied(fake, mallocs):
    cp = fake.module
    a = cp.zeros((256,), dtype=np.float32)
    mallocs.clear()
    cp.exp(a, out=a)
    cp.multiply(a, a, out=a)
    a += a
    a[...] = a
    cp.copyto(a, a)
    assert mallocs == []


def test_an_overlapping_view_of_the_output_is_copied_first(fake, mallocs):
    cp = fake.module
    a = cp.zeros((256,), dtype=np.float32)
    mallocs.clear()
    cp.exp(a[...], out=a)  # another object over the same bytes
    assert mallocs == [1024]
    cp.add(a[:128], a[64:192], out=a[64:192])  # both inputs overlap the output, neither is it
    assert mallocs == [1024, 512, 512]
    mallocs.clear()
    a[128:] += a[:128]  # apart: no copy
    cp.add(a[:128], 1, out=a[128:])
    assert mallocs == []
    b = cp.zeros((16, 16), dtype=np.float32)
    mallocs.clear()
    b += b.T
    assert mallocs == [1024]


def test_assignment_and_copyto_copy_an_overlapping_source_unless_a_memcpy_does(fake, mallocs):
    cp = fake.module
    a = cp.zeros((16, 16), dtype=np.float32)
    mallocs.clear()
    a[1:] = a[:-1]  # contiguous, one dtype, one shape: a device memcpy
    cp.copyto(a[1:], a[:-1])
    assert mallocs == []
    a[...] = a.T  # elementwise_copy, the source copied first
    cp.copyto(a, a.T)
    assert mallocs == [1024, 1024]


@needs_gpu
def test_a_captured_overlapping_input_is_refused_by_gpubps_guard():
    """On a GPU, CuPy's own copy; under GPUBP_FAKE_CUPY=1, the fake's."""
    backend = CupyBackend(0)
    a = backend.zeros((8,))
    with backend.activate():
        cupy.exp(a, out=a)  # the kernel compiled and loaded before any capture, as GraphedStep's warm-up does
        a.fill(0)
    stream = backend.stream()
    with pytest.raises(StateError, match="asked CuPy's memory pool"):
        backend.capture(lambda: cupy.exp(a[...], out=a), stream)
    assert not stream.is_capturing()
    backend.capture(lambda: cupy.exp(a, out=a), stream).launch(stream)  # the very array: allowed
    stream.synchronize()
    assert backend.to_numpy(a).tolist() == [1] * 8


def test_a_boolean_mask_assignment_scans_the_mask_and_reads_its_count(fake, mallocs):
    """CuPy 14's a[mask] = v (cupy/_core/_routines_indexing.pyx, _scatter_op_mask_single ->
    _prepare_mask_indexing_single, line 801-802 at v14.2.0) scans the mask into a new array and reads
    its last element on the host: an allocation, and a sync no capture allows."""
    cp = fake.module
    a = cp.zeros((8,), dtype=np.float32)
    mask = a > -1
    mallocs.clear()
    a[mask] = 1
    assert mallocs == [512] and cp.asnumpy(a).tolist() == [1] * 8  # 8 int32 counts, rounded up to 512 bytes
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        stream.begin_capture()
        try:
            with pytest.raises(fake.CaptureError):
                a[mask] = 2
        finally:
            stream.end_capture()
