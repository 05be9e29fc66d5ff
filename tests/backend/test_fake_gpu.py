"""The GPU path rehearsed without a GPU: the gpu-marked tests run with tests/fake_cupy.py in CuPy's
place (CuPy's API over NumPy, as strict as CuPy about host arrays, its names, its memory pool and
CUDA graph capture). Not a GPU proof, as the numbers are NumPy's; what it catches is what breaks a
first GPU run before any number: a host array where CuPy refuses one, a name CuPy lacks, an
allocation or a host read inside a captured step, a test that assumes the CPU.

The fake's own rules are held here to CuPy's behaviour as CuPy 14's source states it, so that a
rule made looser would fail this file, not pass the rehearsal silently.
"""
import gc
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from gpubp._compat import cupy_import_error, has_cupy

from helpers import GPU_OK, ROOT

pytestmark = pytest.mark.skipif(not has_cupy, reason=f"the fake reads CuPy's names: CuPy is not installed "
                                                      f"({cupy_import_error})")


@pytest.fixture(scope="module")
def fake():
    import fake_cupy  # importable without installing it: its module object is the fake `cupy`
    return fake_cupy


def test_host_arrays_are_refused_where_cupy_refuses_them(fake):
    cp = fake.module
    a = cp.zeros((3,), dtype=np.float32)
    host = np.ones(3, np.float32)
    for operation in (lambda: a + host, lambda: host + a, lambda: cp.add(a, host), lambda: cp.matmul(a, host)):
        with pytest.raises(TypeError, match="Unsupported type <class 'numpy.ndarray'>"):
            operation()
    with pytest.raises(TypeError, match="Unsupported type"):
        a.__iadd__(np.ones(3))
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray cannot be used for fill"):
        a[...] = host
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        np.asarray(a)
    with pytest.raises(TypeError, match="Only numpy.ndarray can be set"):
        a.set([1, 2, 3])
    with pytest.raises(TypeError, match="float64 array cannot be set to float32 array"):
        a.set(np.ones(3))
    a[...] = np.float32(2)  # scalars, NumPy's too, are taken
    a.set(host)
    assert a.get().tolist() == [1, 1, 1] and cp.asnumpy(a + 1.5).tolist() == [2.5, 2.5, 2.5]
    assert cp.take(a, np.array([0, 2])).shape == (2,)  # indices CuPy converts


def test_only_cupys_names_exist_and_reductions_are_device_arrays(fake):
    cp = fake.module
    a = cp.arange(6, dtype=np.float64).reshape(2, 3)
    with pytest.raises(AttributeError):
        a.setflags(write=False)  # a NumPy method CuPy's arrays lack
    with pytest.raises(AttributeError):
        getattr(cp, "not_a_cupy_function")
    total = a.sum()
    assert isinstance(total, cp.ndarray) and total.shape == () and float(total) == 15
    assert np.sum(a).shape == () and isinstance(np.exp(a), cp.ndarray)  # NumPy's functions dispatch to CuPy


def test_the_pool_counts_and_its_hooks_see_every_allocation(fake):
    cp = fake.module
    seen = []

    class Hook(cp.cuda.MemoryHook):
        name = "test_fake_gpu_hook"

        def malloc_preprocess(self, **kwargs):
            seen.append(kwargs["size"])
    pool = cp.get_default_memory_pool()
    gc.collect()  # arrays of earlier tests freed first
    before = pool.used_bytes()
    with Hook():
        a = cp.zeros((1000,), dtype=np.float32)
        b = a * 2  # a new array
        a *= 2  # in place: no allocation
        view = a[10:20]  # a view: none
    assert seen == [4096, 4096] and pool.used_bytes() >= before + 8192
    del a, b, view
    gc.collect()
    assert pool.used_bytes() == before


def test_a_capture_records_and_replays_with_the_scalars_of_its_time(fake):
    cp = fake.module
    x, y = cp.zeros((4,), dtype=np.float64), cp.ones((4,), dtype=np.float64)
    stream = cp.cuda.Stream(non_blocking=True)
    lr = 0.5
    with stream:
        stream.begin_capture()
        cp.multiply(y, lr, out=y)  # recorded with lr = 0.5
        x += y
        with pytest.raises(NotImplementedError, match="cuBLAS"):
            cp.matmul(x[None], y[:, None])
        with pytest.raises(fake.CaptureError):
            float(x[0])  # a host read inside a capture
        graph = stream.end_capture()
    assert cp.asnumpy(x).tolist() == [0, 0, 0, 0]  # nothing ran while capturing
    lr = 10.0  # noqa: F841  (a replay does not see it)
    graph.launch(stream)
    graph.launch(stream)
    assert cp.asnumpy(y).tolist() == [0.25] * 4 and cp.asnumpy(x).tolist() == [0.75] * 4


def test_a_copy_into_an_array_is_recorded_in_a_capture(fake):
    """cupy.copyto (and put, place, putmask) launch a kernel writing their first argument: a capture
    records it, a replay runs it (it had run once, at capture, like a function making a new array)."""
    cp = fake.module
    dst, src = cp.zeros((3,), dtype=np.float64), cp.ones((3,), dtype=np.float64)
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        stream.begin_capture()
        cp.copyto(dst, src, where=src > 0)
        graph = stream.end_capture()
    assert cp.asnumpy(dst).tolist() == [0, 0, 0]  # recorded, not run
    src += 1
    graph.launch(stream)
    assert cp.asnumpy(dst).tolist() == [2, 2, 2]


@pytest.mark.slow
@pytest.mark.skipif(GPU_OK, reason="a real GPU runs the gpu-marked tests themselves")
def test_the_gpu_marked_tests_fail_only_where_the_fake_cannot_follow(tmp_path):
    report = tmp_path / "report.xml"
    env = {**os.environ, "GPUBP_FAKE_CUPY": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("GPUBP_DEVICE", None)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider",
                           f"--basetemp={tmp_path / 'runs'}", f"--junitxml={report}", "tests"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert report.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    cases = ET.parse(report).getroot().iter("testcase")
    passed, failed, skipped = [], [], []
    for case in cases:
        name = f"{case.get('classname')}::{case.get('name')}"
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        if problem is not None:
            text = (problem.get("message") or "") + (problem.text or "")
            if "FakeLimit" not in text:  # what the fake cannot do says nothing about gpubp
                failed.append(f"{name}: {(problem.get('message') or '')[:300]}")
        elif case.find("skipped") is not None:
            skipped.append(f"{name}: {case.find('skipped').get('message')}")
        else:
            passed.append(name)
    assert not failed, "\n".join(failed)
    assert passed, proc.stdout[-3000:]
    assert not [s for s in skipped if "no usable GPU" in s], skipped  # the fake is a usable GPU to every test
