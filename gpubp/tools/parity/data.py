"""The data a parity run trains on, as fit takes it: host copies checked once (numbers, finite, a
target per row), integer or bool features and targets read as floats (class labels of
softmax_cross_entropy kept integers), put on each backend once, where a value beyond its float
type is refused naming the array; what the model or the loss refuses at the first step is named
as the data given."""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from ..._compat import to_host
from ...backend import get_backend
from ...errors import DTypeError, GpubpError, InvalidValueError, ShapeError
from ...losses import SoftmaxCrossEntropy, get_loss


def host_data(X, y, loss):
    """Host copies of the data: numbers, finite, as many targets as rows, at least one row; integer
    and bool values as float64 (fit's rule: uint8 pixels, 0/1 targets), except class labels."""
    Xh, yh = np.asarray(to_host(X)), np.asarray(to_host(y))
    for name, a in (("X", Xh), ("y", yh)):
        if a.dtype.kind not in "iubf":
            raise DTypeError(f"parity: {name} must hold real numbers, got an array of dtype {a.dtype}")
        get_backend("cpu").check_finite(a, f"parity: {name}")
    if Xh.ndim == 0 or yh.ndim == 0 or Xh.shape[0] == 0:
        raise ShapeError(f"parity needs at least one row of data, got X of shape {Xh.shape} and y of shape {yh.shape}")
    if Xh.shape[0] != yh.shape[0]:
        raise ShapeError(f"parity: X has {Xh.shape[0]} rows but y has {yh.shape[0]}; they must match")
    labels = isinstance(get_loss(loss), SoftmaxCrossEntropy) and yh.ndim == 1 and yh.dtype.kind in "iu"
    return _floats(Xh), yh if labels else _floats(yh)


def _floats(a):
    return a.astype(np.float64) if a.dtype.kind in "iub" else a


def on_device(backend, X, y):
    """(X, y) on ``backend`` (floats in its dtype), a refusal naming the array and the backend."""
    out = []
    for name, a in (("X", X), ("y", y)):
        try:
            out.append(backend.asarray(a))
        except GpubpError as exc:  # values beyond float32's range
            raise type(exc)(f"parity: {name} on {backend.device}/{backend.dtype}: {exc}") from None
    return out


@contextmanager
def data_named(X, y, loss, step):
    """At the first step, what the model or the loss refuses in the data named as the data given."""
    try:
        yield
    except (ShapeError, DTypeError, InvalidValueError) as exc:
        if step:
            raise
        name = type(loss).__name__ if not isinstance(loss, str) else loss
        raise type(exc)(f"parity: X of shape {X.shape} and y of shape {y.shape} ({y.dtype}) do not fit the model "
                        f"and the {name} loss: {exc}") from None
