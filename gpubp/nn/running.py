"""The running estimates of a normalisation layer's statistics (BatchNorm's ``buffers``): PyTorch's
update rule, in place on the device, and the estimates as a layer keeps them (``RunningEstimates``:
made, and checked when loaded or moved).

For each channel, with k = momentum, or k = 1 / n for ``momentum=None`` (n = the count of batches
averaged, this one included: the plain average of every batch's statistics)::

    running_mean = (1 - k) running_mean + k mu
    running_var  = (1 - k) running_var  + k var m / (m - 1)      (unbiased, m values per channel)
"""
from __future__ import annotations

import numpy as np

from ..errors import InvalidValueError

STATISTICS = ("running_mean", "running_var")
COUNT = "num_batches_tracked"  # PyTorch's name; kept (int64, on the device) only for momentum=None


def update(xp, buffers, mu, var, m, momentum, work):
    """Move ``buffers``' estimates (and count) by the batch's ``mu`` and biased ``var`` over ``m``
    values per channel, in place: the buffers stay the same arrays, every intermediate is in ``work``
    (BatchNorm's work arrays), and nothing is read to the host, k = 1 / n included.

    A batch whose mean or variance is not finite (NaN/Inf in X, or a variance past the dtype's
    range: float32 values spread over more than about 1.8e19) leaves both estimates as they were,
    and the count too: its output already shows the NaN, and the statistics of every batch before
    it, what eval uses, are not lost (PyTorch would keep NaN in them for good).

    Nor does a batch of fewer than two values per channel (no unbiased variance: m / (m - 1)). A
    layer refuses such a batch, so it comes only in a data-parallel step that a failing rank joins
    with zeros (``train/shares.py`` ``complete``), undone with its epoch (was: ZeroDivisionError on
    the other ranks, raised again while they completed the step's sums: every rank hung)."""
    if m < 2:
        return
    rm, rv = buffers["running_mean"], buffers["running_var"]
    finite = xp.all(xp.isfinite(mu, out=work.finite), out=work.ok)  # a 0-d bool array
    xp.logical_and(finite, xp.all(xp.isfinite(var, out=work.finite), out=work.ok2), out=finite)
    if momentum is None:  # k = 1 / n, in float64 on the device, rounded once to the dtype
        n = buffers[COUNT]
        n += finite
        # n = 0 only while no batch was finite: nothing is written then
        k64 = xp.divide(1, xp.maximum(n, 1, out=work.n), out=work.k64)
        work.k[...] = k64
        work.keep[...] = xp.subtract(1, k64, out=work.x64)
        work.k_var[...] = xp.divide(xp.multiply(k64, m, out=work.x64), m - 1, out=work.x64)
        k, keep, k_var = work.k, work.keep, work.k_var
    else:  # the scalars in float64 on the host, rounded once
        k = momentum
        keep, k_var = 1 - k, k * m / (m - 1)
    for estimate, stat, weight, into in ((rm, mu, k, work.new_mean), (rv, var, k_var, work.new_var)):
        old, new = xp.multiply(estimate, keep, out=into[0]), xp.multiply(stat, weight, out=into[1])
        xp.copyto(estimate, xp.add(old, new, out=old), where=finite)  # keep estimate + weight stat


class RunningEstimates:
    """A base of BatchNorm: its running estimates (and count) made, loaded checked and moved."""

    def _keep_estimates(self, counted: bool) -> None:
        """running_mean = 0 and running_var = 1 per channel, and with ``counted`` (momentum=None) the
        count n = 0 (int64), kept as the layer's buffers; none without track_running_stats."""
        C, xp = self.num_features, self.backend.xp
        estimates = {"running_mean": self.backend.zeros((C,)), "running_var": xp.ones((C,), dtype=self.backend.dtype)}
        if counted:
            estimates[COUNT] = self.backend.zeros((), dtype=np.int64)
        self.keep_buffers(estimates if self.track_running_stats else {})

    def checked_buffers(self, arrays: dict) -> dict:
        """The estimates and the count this layer keeps, from ``{name: array}`` (any device), checked
        (``checked``)."""
        shapes = {name: buf.shape for name, buf in self.buffers.items()}
        if not isinstance(arrays, dict) or set(arrays) != set(shapes):
            return self._checked_arrays("buffer", arrays, shapes)  # the error naming the buffers
        return checked(self, arrays, shapes)

    def moved_arrays(self, backend, prefix=""):
        """As ``Layer.moved_arrays``, with the count (int64, not of the layer's dtype) moved too."""
        arrays = super().moved_arrays(backend, prefix)
        if COUNT in self.buffers:
            arrays["buffer"][COUNT] = count_on(self, backend, self.buffers[COUNT])
        return arrays


def checked(layer, arrays, shapes):
    """The estimates and count of ``shapes`` (``{name: shape}``, those ``layer`` keeps) from
    ``arrays`` (the same names, any device), each checked: the statistics of their shapes and
    finite, a variance never negative (its square root is taken in eval), a count a 0-d integer >= 0."""
    stats = {k: arrays[k] for k in STATISTICS if k in shapes}
    result = layer._checked_arrays("buffer", stats, {k: shapes[k] for k in stats})
    for name, a in result.items():
        layer.backend.check_finite(a, f"{layer!r} buffer {name}")
    if stats and bool((result["running_var"] < 0).any()):
        raise InvalidValueError(f"{layer!r} buffer running_var must be >= 0 (a variance), got a negative value")
    if COUNT in shapes:
        result[COUNT] = count_on(layer, layer.backend, arrays[COUNT])
    return result


def count_on(layer, backend, value):
    """``value`` (an integer array of shape (), any device; a Python int) as an int64 on ``backend``."""
    n = np.asarray(layer.backend.to_numpy(value))
    if n.shape != () or n.dtype.kind not in "iu" or not 0 <= n <= np.iinfo(np.int64).max:
        raise InvalidValueError(f"{layer!r} buffer {COUNT} is a count, a 0-d integer array >= 0, got "
                                f"{n.dtype} of shape {n.shape}" + (f": {n}" if n.shape == () else ""))
    return backend.asarray(n, np.int64)
