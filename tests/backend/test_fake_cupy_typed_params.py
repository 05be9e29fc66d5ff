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
