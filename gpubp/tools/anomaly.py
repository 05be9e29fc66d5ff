"""Anomaly mode: find the first layer whose output or delta turns NaN/Inf.

    with gpubp.detect_anomaly():
        loss.forward(model.forward(X), y)
        model.backward(loss.backward())

Inside the block every model reports to an :class:`AnomalyWatch` (the observer hook
of :mod:`gpubp.network`), which checks each layer's forward output and backward
result (one reduction and one device sync each: a debugging tool, off by default,
and free when off). The first non-finite array raises NumericalError naming the
layer (index and type) and the pass (forward or backward).
"""
from __future__ import annotations

import contextlib
import contextvars

from ..backend.base import count_nonfinite
from ..errors import NumericalError
from ..network import observing


_enabled: contextvars.ContextVar = contextvars.ContextVar("gpubp_anomaly", default=False)


def anomaly_enabled() -> bool:
    return _enabled.get()


class AnomalyWatch:
    """Observer raising NumericalError at the first layer whose result has NaN/Inf
    (while anomaly mode is enabled: a ``detect_anomaly(False)`` block inside pauses it)."""

    def forward(self, model, i, layer, X, Y):
        self._check(model, Y, i, layer, "forward", "output")

    def backward(self, model, i, layer, dY, dX):
        if dX is not None:
            self._check(model, dX, i, layer, "backward", "delta (dX)")

    @staticmethod
    def _check(model, x, index, layer, phase, what):
        if not _enabled.get():
            return
        bad = count_nonfinite(model.backend.xp, x)
        if bad:
            raise NumericalError(f"anomaly: layer {index} ({layer!r}) produced {bad} NaN/Inf value(s) in its "
                                 f"{phase} {what}, out of {x.size}; the layers before it were finite")


@contextlib.contextmanager
def detect_anomaly(enabled: bool = True):
    """Check every layer of every model run inside the block (``enabled=False`` pauses an outer block)."""
    watch = observing(AnomalyWatch()) if enabled and not _enabled.get() else contextlib.nullcontext()
    token = _enabled.set(bool(enabled))
    try:
        with watch:
            yield
    finally:
        _enabled.reset(token)
