"""Junk given to the Backend's public methods (matmul, sum_rows, zeros, empty, write, address,
lives_in, run, check_array, count_nonfinite): a gpubp error naming the operands' shapes and dtypes
(found only once NumPy or CuPy failed, so a working call pays nothing), never NumPy's own
ValueError, TypeError or MemoryError from inside."""
import numpy as np
import pytest

import gpubp
from gpubp.backend import KERNELS
from gpubp.backend.operands import count_nonfinite
from gpubp.errors import DeviceError, DTypeError, GpubpError, InvalidValueError, OutOfMemoryError, ShapeError
from helpers import DEVICES, needs_gpu


def f32(*shape):
    return np.ones(shape, np.float32)


@pytest.fixture(params=DEVICES)
def backend(request):
    return gpubp.get_backend(request.param, "float32")


def on(backend, a):
    """``a`` on ``backend``'s device, its dtype kept (object and string arrays stay on the host)."""
    if isinstance(a, np.ndarray) and a.dtype.kind in "biufc":
        return backend.xp.asarray(a)
    return a


def host_only(backend, *arrays):
    if backend.device != "cpu" and any(isinstance(a, np.ndarray) and a.dtype.kind in "OU" for a in arrays):
        pytest.skip("CuPy has no object or string arrays")


MATMUL = [  # a, b, out, error, words; before: NumPy's ValueError / UFuncTypeError / TypeError
    (f32(2, 3), f32(4, 5), None, ShapeError, r"matmul: cannot take a float32 \(2, 3\), b float32 \(4, 5\) "
                                             r"\(it takes \(n, k\) @ \(k, m\) -> out \(n, m\)\)"),
    (f32(2, 3), f32(3, 5), f32(2, 4), ShapeError, r"out float32 \(2, 4\)"),
    (f32(2, 3), f32(3, 5), np.ones((2, 5), bool), DTypeError, r"out bool \(2, 5\)"),
    (None, f32(3, 5), None, DTypeError, "matmul: a is a NoneType, not an array"),
    (f32(2, 3), "x", None, DTypeError, "matmul: b is a str 'x', not an array"),
    (f32(2, 3), np.ones((3, 5), complex), f32(2, 5), DTypeError, "b is .*complex128.* real numbers"),
    (f32(2, 3), np.array([[None] * 5] * 3), None, DTypeError, "b is .*object.* real numbers"),
    (f32(2, 3), f32(3, 5), "out", DTypeError, "out is a str 'out', not an array"),
]


@pytest.mark.parametrize("a,b,out,error,words", MATMUL)
def test_matmul_names_the_operands(backend, a, b, out, error, words):
    host_only(backend, a, b, out)
    with pytest.raises(error, match=words):
        backend.matmul(on(backend, a), on(backend, b), out=on(backend, out))


def test_matmul_still_multiplies(backend):
    a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
    got = backend.matmul(backend.asarray(a), backend.asarray(b))
    np.testing.assert_allclose(backend.to_numpy(got), a @ b, rtol=1e-6)


@pytest.mark.parametrize("a,out,error,words", [
    (f32(2, 3, 4), None, ShapeError, r"sum_rows: cannot take a float32 \(2, 3, 4\) \(it takes a \(N, M\) -> out \(M,\)\)"),
    (np.array(1.0, np.float32), None, ShapeError, r"sum_rows: cannot take a float32 \(\)"),  # was: IndexError
    (None, None, DTypeError, "sum_rows: a is a NoneType, not an array"),                       # was: AttributeError
    (f32(2, 3), f32(4), ShapeError, r"out float32 \(4,\)"),
    (f32(2, 3), np.ones(3, bool), DTypeError, r"out bool \(3,\)"),
    (np.array([["a"] * 3] * 2), None, DTypeError, "sum_rows: a is .*<U1.* real numbers"),
])
def test_sum_rows_names_the_operands(backend, a, out, error, words):
    host_only(backend, a, out)
    with pytest.raises(error, match=words):
        backend.sum_rows(on(backend, a), out=on(backend, out))


@pytest.mark.parametrize("method", ["zeros", "empty"])
@pytest.mark.parametrize("shape,dtype,error,words", [
    ((10**30,), None, OutOfMemoryError, r"an array of shape \(10{30},\) holds 1e\+30 values"),  # was: ValueError
    ((2, 10**30, 3), "float64", OutOfMemoryError, "holds 6e\\+30 values, 4.47e\\+22 GiB"),
    ((2, -3), None, ShapeError, r"shape must be .* >= 0, got \(2, -3\)"),
    ("x", None, ShapeError, "got 'x'"),
    (None, None, ShapeError, "got None"),
    ((2.5, 3), None, ShapeError, r"got \(2.5, 3\)"),
    ((2,), "x", DTypeError, "dtype must be a dtype such as 'float32', got 'x'"),
])
def test_allocation_names_the_shape_or_size(backend, method, shape, dtype, error, words):
    with pytest.raises(error, match=f"{method}: .*{words}"):
        getattr(backend, method)(shape, dtype)


def test_an_array_as_dtype_is_not_read_as_a_truth_value(backend):
    """Before: ``dtype or self.dtype``: NumPy's 'truth value of an array is ambiguous'."""
    with pytest.raises(DTypeError, match="zeros: dtype must be a dtype"):
        backend.zeros((2,), np.ones(3, bool))
    assert backend.zeros((2,), "float64").dtype == np.float64


def test_an_allocation_beyond_memory_is_named(monkeypatch):
    """NumPy's MemoryError ('Unable to allocate ...') comes back as gpubp's, naming the size."""
    backend = gpubp.get_backend("cpu", "float64")

    def refuse(shape, dtype):
        raise MemoryError("Unable to allocate")
    monkeypatch.setattr(backend, "xp", type("xp", (), {"zeros": staticmethod(refuse)}))
    with pytest.raises(OutOfMemoryError, match=r"zeros: an array of shape \(1000, 1000\) holds 1e\+06 values, "
                                               r"0.00745 GiB"):
        backend.zeros((1000, 1000))


@pytest.mark.parametrize("dst,values,error,words", [
    (f32(2, 3), "x", DTypeError, "write: host_values is .*<U1.* real numbers"),      # was: ValueError from float('x')
    (f32(2, 3), 1j, DTypeError, "write: host_values is .*complex128"),               # was: TypeError
    (f32(2, 3), np.ones(4), ShapeError, r"write: cannot take dst float32 \(2, 3\), host_values float64 \(4,\)"),
    (f32(2, 3), [[1.0], [2.0, 3.0]], ShapeError, "host_values is not a rectangular array"),
    (None, [1.0], DTypeError, "write: dst is a NoneType, not an array"),             # was: AttributeError
])
def test_write_names_what_does_not_fit(backend, dst, values, error, words):
    with pytest.raises(error, match=words):
        backend.write(on(backend, dst), values)


def test_address_and_lives_in_refuse_what_is_no_array():
    backend = gpubp.get_backend("cpu")
    with pytest.raises(DTypeError, match="address: a is a NoneType, not an array"):  # was: AttributeError
        backend.address(None)
    with pytest.raises(InvalidValueError, match="lives_in takes a list of arrays and a flat array on cpu, got a NoneType"):
        backend.lives_in(None, f32(3))                                                # was: TypeError
    with pytest.raises(DTypeError, match="address: a is a str"):
        backend.lives_in([f32(3)], "flat")
    flat = f32(5)
    assert backend.lives_in([flat[:2], flat[2:]], flat)


def test_run_refuses_what_launch_refuses():
    """``run`` takes what ``launch`` has checked; given anything else it says what ``launch`` would
    (before: AttributeError 'NoneType' has no attribute 'numpy', TypeError from the NumPy body)."""
    backend, sigmoid = gpubp.get_backend("cpu"), KERNELS["sigmoid"]
    with pytest.raises(InvalidValueError, match="a launch takes a registry Kernel"):
        backend.run(None, [f32(3), f32(3)])
    with pytest.raises(InvalidValueError, match="run takes a registry Kernel and a list of its arguments"):
        backend.run(sigmoid, None)
    with pytest.raises(InvalidValueError, match="kernel sigmoid takes 2 arrays/scalars, got 3"):
        backend.run(sigmoid, [f32(3), f32(3), f32(3)])
    with pytest.raises(DTypeError, match="kernel sigmoid: z is a NumPy array \\(int64"):
        backend.run(sigmoid, [np.ones(3, np.int64), np.ones(3, np.int64)])
    out = f32(3)
    backend.run(sigmoid, [np.zeros(3, np.float32), out])
    np.testing.assert_array_equal(out, 0.5)


def test_a_kernel_given_too_few_arguments_is_a_gpubp_error():
    """Before: a bare TypeError."""
    with pytest.raises(InvalidValueError, match="kernel sigmoid takes 2 arrays/scalars, got 1"):
        gpubp.get_backend("cpu").launch(KERNELS["sigmoid"], f32(3))


def test_check_array_refuses_an_array_as_ndim():
    with pytest.raises(InvalidValueError, match="check_array: ndim must be a whole number or None"):
        gpubp.get_backend("cpu").check_array(f32(2, 3), ndim=np.ones(2, bool))  # was: truth value ambiguous


@pytest.mark.parametrize("x", [None, "x", [1.0]])
def test_count_nonfinite_and_check_finite_refuse_what_is_no_array(x):
    with pytest.raises(DTypeError, match="count_nonfinite: expected an array, got a "):  # was: AttributeError
        count_nonfinite(np, x)
    with pytest.raises(GpubpError):
        gpubp.get_backend("cpu").check_finite(x)


@needs_gpu
def test_a_host_array_in_a_gpu_matmul_is_a_device_error():
    """CuPy's TypeError for a NumPy operand comes back naming the operand and the device."""
    backend = gpubp.get_backend("cuda:0", "float32")
    with pytest.raises(DeviceError, match="matmul: b is a NumPy array .*not an array on cuda:0"):
        backend.matmul(backend.asarray(f32(2, 3)), f32(3, 4))
