"""Odd input to the backend's public API: a gpubp error naming what is wrong, never a NumPy
error from inside, a silent float64 or a value that quietly became Inf."""
import numpy as np
import pytest

import gpubp
from gpubp.backend import KERNELS, NumpyBackend, as_float_dtype, get_backend
from gpubp.errors import DTypeError, InvalidValueError, NumericalError, ShapeError


def test_none_is_not_read_as_float64():
    """np.dtype(None) is float64: before, NumpyBackend(None) was a float64 backend (the default is float32)."""
    with pytest.raises(DTypeError, match="dtype must be float32 or float64, got None"):
        NumpyBackend(None)
    with pytest.raises(DTypeError, match="got None"):
        as_float_dtype(None)


@pytest.mark.parametrize("spec", ["cpu/FLOAT64", "cpu/ float64 ", "CPU/Float64"])
def test_a_dtype_is_spelled_in_any_case_like_the_device(spec):
    """Before: ' CPU ' was the CPU but 'cpu/FLOAT64' a DTypeError."""
    assert get_backend(spec).dtype == np.float64


@pytest.fixture
def backend():
    return get_backend("cpu", "float32")


def test_masked_values_are_refused(backend):
    """Before: the value under the mask was used as data."""
    with pytest.raises(InvalidValueError, match="1 masked"):
        backend.asarray(np.ma.masked_array([1.0, 2.0], mask=[0, 1]))
    assert backend.asarray(np.ma.masked_array([1.0, 2.0], mask=[0, 0])).tolist() == [1.0, 2.0]


def test_a_ragged_list_is_a_shape_error(backend):
    with pytest.raises(ShapeError, match="not a rectangular array"):  # was: NumPy's ValueError
        backend.asarray([[1.0, 2.0], [3.0]])


def test_values_beyond_float32_are_refused_not_made_inf(backend, recwarn):
    """Before: 1e300 became inf, with only NumPy's RuntimeWarning."""
    with pytest.raises(NumericalError, match=r"holds values up to 1e\+300, beyond float32's range \(\+-3.4e\+38\)"):
        backend.asarray(np.array([1.0, 1e300]))
    assert np.isinf(backend.asarray(np.array([np.inf, 1.0]))).sum() == 1  # an Inf given stays (finite checks name it)
    assert get_backend("cpu", "float64").asarray(np.array([1e300]))[0] == 1e300
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


@pytest.mark.parametrize("dtype", ["U3", "xx", object])
def test_asarray_dtype_must_be_numeric(backend, dtype):
    """Before: dtype='U3' returned an array of strings, 'xx' NumPy's TypeError."""
    with pytest.raises(DTypeError, match=f"asarray: dtype must be a numeric dtype.*got {dtype!r}"):
        backend.asarray([1.0], dtype=dtype)


def test_an_unknown_kernel_name_lists_the_known_ones():
    with pytest.raises(InvalidValueError, match=r"no kernel named 'sigmod'; the registry has .*sigmoid"):
        KERNELS["sigmod"]  # was: KeyError: 'sigmod'
    assert "sigmoid" in KERNELS and KERNELS.get("sigmod") is None


@pytest.mark.parametrize("call", ["launch", "apply", "bind"])
def test_a_kernel_given_by_name_is_named(backend, call):
    """Before: AttributeError: 'str' object has no attribute 'input_names'."""
    x = np.ones(3, np.float32)
    with pytest.raises(InvalidValueError, match=r"takes a registry Kernel, such as gpubp.backend.KERNELS\['sigmoid'\], "
                                                r"got 'sigmoid'"):
        getattr(backend, call)("sigmoid", x, *(() if call == "apply" else (np.empty_like(x),)))


def test_use_backend_keeps_the_dtype_its_spec_names(monkeypatch):
    """Before: use_backend('cpu/float64') set the device only, so models in the block were float32."""
    from gpubp.backend import default_device, use_backend
    from gpubp.errors import DeviceError
    monkeypatch.delenv("GPUBP_DEVICE", raising=False)
    with use_backend("cpu/float64") as b:
        assert b.dtype == np.float64 and default_device() == "cpu/float64"
        assert gpubp.mlp(2, [3], 1, "tanh").backend.dtype == np.float64
        with pytest.raises(DeviceError, match=r"backend 'cpu/float64' \(the default, from use_backend or "
                                              r"GPUBP_DEVICE\) names dtype float64 but dtype=float32"):
            get_backend(None, "float32")
        with use_backend("cpu"):  # a spec without a dtype: the default dtype again
            assert get_backend().dtype == np.float32
    assert default_device() == "auto"


@pytest.mark.parametrize("args, error, words", [
    ((np.ones(4), np.empty(4, np.float32)), DTypeError, "sigmoid: z is a NumPy array \\(float64"),  # was: cast
    (([0.0] * 4, np.empty(4, np.float32)), DTypeError, "sigmoid: z is a list"),
    ((np.ones(4, np.float32), np.empty(8, np.float32)), ShapeError, "s has shape \\(8,\\), z \\(4,\\)"),  # NumPy: error
    ((np.ones(1, np.float32), np.empty(4, np.float32)), ShapeError, "s has shape \\(4,\\), z \\(1,\\)"),  # broadcast
])
def test_a_launch_takes_arrays_of_the_backend_s_dtype_and_one_shape(args, error, words):
    """Before: NumPy cast float64 into a float32 launch and broadcast a (1,) input silently, where
    CuPy's kernel refuses: the devices parted ways. Checked once when bound, at each eager launch."""
    backend = get_backend("cpu", "float32")
    for call in (backend.launch, backend.bind):
        with pytest.raises(error, match=words):
            call(KERNELS["sigmoid"], *args)


@pytest.mark.parametrize("dtype, words", [(bool, "a bool array"), (np.int8, "an integer array"),
                                          (np.uint16, "an integer array"), (object, "an object array"),
                                          (np.float16, "a float16 array")])
def test_a_wrong_dtype_is_named_by_its_kind(dtype, words):
    backend = gpubp.get_backend("cpu", "float32")
    with pytest.raises(gpubp.DTypeError, match=f"layer input: expected float32 values, got {words}; convert"):
        backend.check_array(np.zeros(3, dtype=dtype), "layer input")
