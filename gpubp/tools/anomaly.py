"""Anomaly mode: find the first layer whose output or gradients turn NaN/Inf.

    with gpubp.detect_anomaly():
        loss.forward(model.forward(X), y)
        model.backward(loss.backward())

Inside the block every model reports to an :class:`AnomalyWatch` (the observer hook
of :mod:`gpubp.network`), which checks the model's input, each layer's forward output,
the gradient the top layer receives from the loss, and each layer's backward results:
dX and its parameter gradients (dW, db, ...; the first layer's are all there is when
fit skips its dX). One reduction and one device sync each: a debugging tool, off by
default, and free when off. The first non-finite array raises NumericalError naming where
it was found: the input, a layer (index and type) and the pass, or the loss's gradient.
"""
from __future__ import annotations

import contextvars

from ..backend.operands import count_nonfinite
from .. import _checks
from ..errors import GpubpError, InvalidValueError, NumericalError, StateError
from ..network import observing


_enabled: contextvars.ContextVar = contextvars.ContextVar("gpubp_anomaly", default=False)


def anomaly_enabled() -> bool:
    return _enabled.get()


class AnomalyWatch:
    """Observer raising NumericalError at the first non-finite array of a pass (while anomaly
    mode is enabled: a ``detect_anomaly(False)`` block inside pauses it)."""

    def forward(self, model, i, layer, X, Y):
        try:
            if i == 0:
                self._check(model, X, lambda bad: f"the model's input X has {bad} NaN/Inf value(s), out of "
                                                  f"{X.size}, before layer 0 ran")
            self._check(model, Y, self._layer(i, layer, "forward output", "the layers before it", Y.size))
        except _FAILURES as exc:
            raise _event_error("forward", "X, Y", exc) from None

    def backward(self, model, i, layer, dY, dX):
        try:
            if i == len(model.layers) - 1:
                self._check(model, dY, lambda bad: f"the gradient dY that layer {i} ({layer!r}) received from the "
                                                   f"loss has {bad} NaN/Inf value(s), out of {dY.size}: look at the "
                                                   f"loss, its targets and the predictions")
            for name, g in layer.grads.items():
                self._check(model, g, self._layer(i, layer, f"backward gradient d{name}", "the layers above it", g.size))
            if dX is not None:
                self._check(model, dX, self._layer(i, layer, "backward delta (dX)", "the layers above it", dX.size))
        except _FAILURES as exc:
            raise _event_error("backward", "dY, dX", exc) from None

    @staticmethod
    def _layer(i, layer, what, others, size):
        return lambda bad: (f"layer {i} ({layer!r}) produced {bad} NaN/Inf value(s) in its {what}, out of "
                            f"{size}; {others} were finite")

    @staticmethod
    def _check(model, x, message):
        if not _enabled.get():
            return
        bad = count_nonfinite(model.backend.xp, x)
        if bad:
            raise NumericalError(f"anomaly: {message(bad)}")


_FAILURES = (AttributeError, TypeError, ValueError)  # what Python raises on events that are none


def _event_error(event, arrays, exc):
    """The error of an observer event given what no model tells its observers (``exc`` what that raised)."""
    if isinstance(exc, GpubpError):
        return exc
    return InvalidValueError(f"AnomalyWatch.{event}: takes (model, i, layer, {arrays}) as a Sequential tells its "
                             f"observers: a model, a layer index, the layer and arrays ({exc})")


class detect_anomaly:  # noqa: N801 (used as a function: ``with gpubp.detect_anomaly():``)
    """Check every layer of every model run inside the block (``enabled=False`` pauses an outer
    block). The same object may be entered again, nested or later."""

    def __init__(self, enabled: bool = True):
        self.enabled, self._entered = _checks.flag("detect_anomaly(enabled)", enabled), []

    def __enter__(self):
        watch = observing(AnomalyWatch()) if self.enabled and not _enabled.get() else None
        if watch is not None:
            watch.__enter__()
        self._entered.append((watch, _enabled.set(self.enabled)))
        return self

    def __exit__(self, *exc):
        if not self._entered:
            raise StateError("detect_anomaly: __exit__ without a matching __enter__; use it as "
                             "`with gpubp.detect_anomaly(): ...`")
        watch, token = self._entered.pop()
        _enabled.reset(token)
        if watch is not None:
            watch.__exit__(*exc)
        return False
