"""Anomaly mode: find the first layer whose output or delta turns NaN/Inf.

    with gpubp.detect_anomaly():
        loss.forward(model.forward(X), y)
        model.backward(loss.backward())

Inside the block every layer's forward output and backward result is checked
(one reduction and one device sync each: a debugging tool, off by default, and
free when off). The first non-finite array raises NumericalError naming the
layer (index and type) and the pass (forward or backward).
"""
from __future__ import annotations

import contextlib
import contextvars

from .backend.base import count_nonfinite
from .errors import NumericalError

_enabled: contextvars.ContextVar = contextvars.ContextVar("gpubp_anomaly", default=False)


def anomaly_enabled() -> bool:
    return _enabled.get()


@contextlib.contextmanager
def detect_anomaly(enabled: bool = True):
    token = _enabled.set(bool(enabled))
    try:
        yield
    finally:
        _enabled.reset(token)


def check_layer(xp, x, index, layer, phase):
    """Raise NumericalError if ``x`` (layer ``index``'s ``phase`` result) has NaN/Inf."""
    bad = count_nonfinite(xp, x)
    if bad:
        what = "output" if phase == "forward" else "delta (dX)"
        raise NumericalError(f"anomaly: layer {index} ({layer!r}) produced {bad} NaN/Inf value(s) in its "
                             f"{phase} {what}, out of {x.size}; the layers before it were finite")
