"""The stand-in CuPy's ElementwiseKernel refuses an array of another dtype for a parameter declared
with a type (``uint32 k0``), as CuPy 14 does: cupy/_core/_kernel.pyx ``_decide_params_type_core``
(lines 557-600 at v14.2.0) raises "Type is mismatched" when ``p.dtype`` is set and the array's dtype
differs. The fake checked only the ``T`` placeholders, so a Dropout key array of the wrong word size
(uint64 where the kernel declares uint32) would pass here and fail at the first GPU launch."""
import numpy as np
import pytest

from gpubp._compat import cupy_import_error, has_cupy

pytestmark = pytest.mark.skipif(not has_cupy, reason=f"the fake reads CuPy's names: CuPy is not installed "
                                                      f"({cupy_import_error})")

PARAMS = ("T x, uint32 k", "T y")


def test_real_cupy_refuses_another_dtype_for_a_declared_type():
    """CuPy's own type resolution (no GPU needed), the rule the fake follows."""
    import cupy
    kernel = cupy.ElementwiseKernel(*PARAMS, "y = x", "gpubp_typed_params_check")
    decide = getattr(kernel, "_decide_params_type", None)
    if decide is None:
        pytest.skip("CuPy's ElementwiseKernel lost _decide_params_type; nothing to compare with")
    f32, u32, u64 = np.dtype(np.float32), np.dtype(np.uint32), np.dtype(np.uint64)
    assert decide((f32, None), (f32,))[0] == (f32, u32)  # a scalar takes the declared type
    assert decide((f32, u32), (f32,))[0] == (f32, u32)
    with pytest.raises(TypeError, match="Type is mismatched. k uint64 uint32"):
        decide((f32, u64), (f32,))


def test_the_fake_refuses_it_too():
    import fake_cupy
    cp = fake_cupy.module
    kernel = cp.ElementwiseKernel(*PARAMS, "y = x", "gpubp_typed_params_check")
    x, y = cp.zeros((4,), dtype=np.float32), cp.zeros((4,), dtype=np.float32)
    with pytest.raises(TypeError, match="Type is mismatched. k uint64 uint32"):
        kernel(x, cp.zeros((), dtype=np.uint64), y)
    with pytest.raises(fake_cupy.FakeLimit):  # the right dtype passes the checks (then: not a registry kernel)
        kernel(x, cp.zeros((), dtype=np.uint32), y)


def test_the_fake_refuses_the_keywords_only_numpy_takes():
    """CuPy 14's ufunc.__call__ takes out, dtype and casting only (cupy/_core/_kernel.pyx lines
    1268-1277 at v14.2.0: "Wrong arguments" for any other, NumPy's where= among them), its reduce
    (array, axis, dtype, out, keepdims); its functions and array methods take what their signatures
    say (ndarray.sum has no initial=, cupy.all no where=). The fake ran NumPy's, which take them all."""
    import fake_cupy
    cp = fake_cupy.module
    a = cp.ones((4,), dtype=np.float32)
    mask = a > 0
    for call in (lambda: cp.exp(a, where=mask), lambda: np.exp(a, where=mask), lambda: np.add.reduce(a, initial=0),
                 lambda: cp.multiply(a, 2, out=a, order="C")):
        with pytest.raises(TypeError, match="Wrong arguments"):
            call()
    for call in (lambda: a.sum(initial=0), lambda: cp.sum(a, initial=0), lambda: cp.all(a > 0, where=mask),
                 lambda: a.max(axis=0, where=mask)):
        with pytest.raises(TypeError, match="cupy"):
            call()
    cp.exp(a, out=a, dtype=np.float32, casting="same_kind")  # what CuPy takes passes
    assert float(a.sum(axis=0, dtype=np.float64, keepdims=False)) == pytest.approx(4 * np.e)
    assert float(cp.sum(a, axis=0)) == pytest.approx(4 * np.e) and float(np.add.reduce(a, axis=0)) == pytest.approx(4 * np.e)


def test_formatting_a_device_array_formats_its_host_copy_as_cupy_does():
    """CuPy 14's ndarray.__format__ is ``format(self.get(), format_spec)`` (cupy/_core/core.pyx, line
    2074 at v14.2.0): NumPy's refusal of a format spec for a 1-d array, and a host read (refused while a
    stream captures). The fake formatted a 1-d array's str with the spec instead."""
    import fake_cupy
    cp = fake_cupy.module
    a = cp.asarray(np.array([1.0, 2.0]))
    assert f"{a[0]:.3g}" == "1" and f"{a}" == str(np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match="unsupported format string"):
        f"{a:>12}"
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        stream.begin_capture()
        try:
            with pytest.raises(fake_cupy.CaptureError):
                f"{a[0]:.3g}"
        finally:
            stream.end_capture()


def test_repr_and_str_read_the_host_copy_as_cupy_does():
    """CuPy 14: ``__repr__`` is ``repr(self.get())`` and ``__str__`` ``str(self.get())`` (cupy/_core/
    core.pyx, lines 2068-2072 at v14.2.0): an error message naming a device array's values inside a
    capture makes a host read there. The fake read NumPy's array directly."""
    import fake_cupy
    cp = fake_cupy.module
    a = cp.asarray(np.array([1.0, 2.0]))
    assert str(a) == str(np.array([1.0, 2.0])) and repr(a) == "fake_cupy." + repr(np.array([1.0, 2.0]))
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        stream.begin_capture()
        try:
            for show in (str, repr):
                with pytest.raises(fake_cupy.CaptureError):
                    show(a)
        finally:
            stream.end_capture()
