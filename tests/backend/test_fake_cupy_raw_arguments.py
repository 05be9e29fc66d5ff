"""The stand-in CuPy's RawKernel holds gpubp's GEMM launch to the kernel's C parameters.

CuPy passes a NumPy scalar by value in its own dtype's bytes and an array as its pointer
(cupy/cuda/function.pyx ``_pointer``, lines 53-82 at v14.2.0), and cuLaunchKernel copies as many bytes
as the kernel's parameter has: an ``np.int32`` for a ``long long`` stride is read with 4 bytes of
whatever follows it, a float64 array through a ``float*`` is read as pairs of floats, both silently.
The fake ran ``np.matmul`` on any such launch (a float64 array was a FakeLimit, i.e. "not gpubp's
fault"); now it reads the parameters from the kernel's source and refuses them."""
import numpy as np
import pytest

from gpubp._compat import cupy_import_error, has_cupy

pytestmark = pytest.mark.skipif(not has_cupy, reason=f"the fake reads CuPy's names: CuPy is not installed "
                                                      f"({cupy_import_error})")


def launch(a, b, out):
    """The grid and arguments gpubp.backend.kernels.gemm.launch_arguments makes (it reads the installed
    CuPy's arrays, not the fake's): three int32 sizes, then nine int64 element strides (item, row and
    column of a, b and out; item stride 0 for these 2-d arrays)."""
    (m, k), n = a.shape, b.shape[1]
    strides = [np.int64(s // x.itemsize) for x in (a, b, out) for s in (0, *x.strides)]
    return (1, 1, 1), (a, b, out, np.int32(m), np.int32(n), np.int32(k), *strides)


def test_launch_is_what_gemm_launches():
    from gpubp.backend.kernels import gemm
    a, b, out = np.ones((2, 3), np.float32), np.ones((3, 2), np.float32).T.copy().T, np.zeros((2, 2), np.float32)
    grid, args = gemm.launch_arguments(a, b, out)
    mine = launch(a, b, out)[1]
    assert [type(x) for x in args[3:]] == [type(x) for x in mine[3:]] and args[3:] == mine[3:]


@pytest.fixture(scope="module")
def fake():
    import fake_cupy
    return fake_cupy


def test_the_gemm_launch_gpubp_makes_passes_and_computes(fake):
    from gpubp.backend.kernels import gemm
    cp = fake.module
    kernel = fake.RawKernel(gemm.SOURCE, "gpubp_gemm_float")
    assert [c for c, pointer in kernel.params] == ["float"] * 3 + ["int"] * 3 + ["long long"] * 9
    a, b = cp.asarray(np.arange(6, dtype=np.float32).reshape(2, 3)), cp.asarray(np.ones((3, 2), np.float32))
    out = cp.zeros((2, 2), dtype=np.float32)
    grid, args = launch(a, b, out)
    kernel(grid, (gemm.THREADS,), args)
    assert cp.asnumpy(out).tolist() == [[3, 3], [12, 12]]


def test_scalars_of_another_size_and_arrays_of_another_dtype_are_refused(fake):
    from gpubp.backend.kernels import gemm
    cp = fake.module
    kernel = fake.RawKernel(gemm.SOURCE, "gpubp_gemm_float")
    a, b, out = (cp.zeros((2, 2), dtype=np.float32) for _ in range(3))
    grid, args = launch(a, b, out)
    strides32 = args[:6] + tuple(np.int32(s) for s in args[6:])  # 4 bytes where the kernel reads 8
    with pytest.raises(TypeError, match="argument 6: a long long takes a NumPy int64 scalar"):
        kernel(grid, (gemm.THREADS,), strides32)
    with pytest.raises(TypeError, match="argument 3: a int takes a NumPy int32 scalar"):
        kernel(grid, (gemm.THREADS,), args[:3] + (2,) + args[4:])  # a Python int: CuPy's own choice of width
    doubles = (cp.zeros((2, 2), dtype=np.float64),) + args[1:]
    with pytest.raises(TypeError, match="argument 0: a float\\* takes a device array of float32"):
        kernel(grid, (gemm.THREADS,), doubles)
    with pytest.raises(TypeError, match="takes 15 arguments"):
        kernel(grid, (gemm.THREADS,), args[:-1])
