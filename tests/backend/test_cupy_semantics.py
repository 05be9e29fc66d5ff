"""Where CuPy computes otherwise than NumPy for the same call, as the layers make it.

Read in CuPy 14.2's source; each gpu-marked case here checks gpubp's outputs agree across devices
where the two libraries part ways.

* ``x.var(dtype=float64)`` of a float32 ``x``: NumPy takes the mean in float64 and squares the
  deviations in float64; CuPy (cupy/_core/_routines_statistics.pyx, ``_var``) takes the mean in
  ``x.dtype`` and computes ``my_norm(x - mean)`` in float32, summing only the squares in float64.
  For float32 values spread past about 1.8e19 the squares overflow on CuPy: var = inf where NumPy's
  is finite. BatchNorm (gpubp/nn/norm.py) computes its batch variance this way.
"""
import numpy as np

from helpers import TOL, needs_gpu


@needs_gpu
def test_batchnorm_statistics_of_widely_spread_float32_values_agree_across_devices():
    from gpubp.backend import get_backend
    from gpubp.nn import BatchNorm
    X = (np.random.default_rng(0).normal(size=(64, 2)) * 3e19).astype(np.float32)
    outs = []
    for device in ("cpu", "cuda:0"):
        backend = get_backend(device, "float32")
        layer = BatchNorm(2, backend=backend)
        outs.append(backend.to_numpy(layer.forward(backend.asarray(X))))
    assert np.isfinite(outs[0]).all() and np.abs(outs[0]).max() > 0.5  # normalised: spread about 1 on the CPU
    np.testing.assert_allclose(outs[1], outs[0], **TOL[np.dtype(np.float32)])
