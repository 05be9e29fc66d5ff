"""BatchNorm's batch statistics per channel and the work arrays they and its backward are written
into (made once per input shape): mu and the biased var over the m values of each channel, in
float64, of the batch, or of a global batch summed over the shares of data-parallel ranks.
"""
from __future__ import annotations

import math
import types

import numpy as np

SMALL_WORK = (  # the work arrays per channel or of one value: names, shape (C: channels), dtype (X: X's)
    ("mu64 var64", ("C",), "float64"),
    ("k64 x64", (), "float64"),
    ("mu var inv_sigma dbeta dgamma scale scale_m", ("C",), "X"),
    ("new_mean new_var", (2, "C"), "X"),  # each estimate's two terms
    ("k keep k_var", (), "X"),
    ("finite", ("C",), "bool"),
    ("ok ok2", (), "bool"),
    ("count64", (), "float64"),
    ("n", (), "int64"),
)


def statistics(xp, X, work, axes, shape, eps, sum_, values):
    """``(mu, var, m)``: X's mean and biased variance per channel in X's dtype (``work.mu``,
    ``work.var``), 1 / sqrt(var + eps) into ``work.inv_sigma``, and m, the values per channel they
    are over. Computed in float64 (var of float32 values past 1.8e19 is finite there; a var past
    the dtype's range is Inf in X's dtype, so the running estimates stay as they were).

    With ``sum_`` (``BatchShare.sum_``) X is one share of a global batch: mu = (sum X) / m, the sum
    and m summed over every share, then var = (sum (X - mu)^2) / m, summed likewise; NumPy's mean
    and var form the same sums and quotients in one process. Without, m is ``values`` (X's own, or
    the global batch's in a step plan's dry run under a share)."""
    mu64, var64, d, count = work.mu64, work.var64, work.d64, work.count64
    if sum_ is not None:
        xp.sum(X, axis=axes, dtype=np.float64, out=mu64)
        count[...] = X.size // X.shape[1]
        sum_([mu64, count])
        m = int(count)
        xp.divide(mu64, count, out=mu64)
    else:
        m = values
        xp.mean(X, axis=axes, dtype=np.float64, out=mu64)
    xp.subtract(X, mu64.reshape(shape), out=d)  # float64 deviations, as NumPy's var forms them
    if sum_ is not None:
        xp.sum(xp.multiply(d, d, out=d), axis=axes, out=var64)
        sum_([var64])
        xp.divide(var64, count, out=var64)
    else:
        xp.mean(xp.multiply(d, d, out=d), axis=axes, out=var64)
    with np.errstate(over="ignore"):
        work.mu[...], work.var[...] = mu64, var64  # rounded to X's dtype
        work.inv_sigma[...] = xp.divide(1, xp.sqrt(xp.add(var64, eps, out=var64), out=var64), out=var64)
    return work.mu, work.var, m


def work_arrays(backend, shape, dtype, C):
    """Every array BatchNorm's forward and backward write besides Y, dX, the running statistics and
    the gradients, for inputs of ``shape`` and ``dtype`` (C channels): x_hat, the float64 deviations
    d64 (forward only) and the backward's product w (X's dtype) in the same memory, and ``SMALL_WORK``."""
    size, f64 = math.prod(shape), np.dtype(np.float64)
    with backend.activate():
        flat = backend.empty((size,), f64)
        work = types.SimpleNamespace(x_hat=backend.empty(shape, dtype), d64=flat.reshape(shape))
        work.w = work.d64 if dtype == f64 else flat.view(dtype)[:size].reshape(shape)
        for names, dims, kind in SMALL_WORK:
            for name in names.split():
                setattr(work, name, backend.empty(tuple(C if d == "C" else d for d in dims),
                                                  dtype if kind == "X" else np.dtype(kind)))
    return work


def axes_of(X):
    """The axes reduced per channel, and the shape a (C,) vector takes to broadcast against X."""
    if X.ndim == 2:
        return (0,), (1, X.shape[1])
    return (0, 2, 3), (1, X.shape[1], 1, 1)
