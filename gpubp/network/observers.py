"""The observer hook: tools watch every layer of a model without touching the layers' code.

An *observer* is any object with ``forward(model, i, layer, X, Y)`` and
``backward(model, i, layer, dY, dX)`` methods (either may be missing), told after
layer ``i`` ran; it may change ``Y``, ``dX`` or ``layer.grads`` in place. A model
tells its own ``observers`` list and those of the enclosing ``observing(...)`` blocks
(how ``gpubp.detect_anomaly`` watches every model it meets). ``dX`` is None when
the first layer computed no input gradient.
"""
from __future__ import annotations

import contextlib
import contextvars

from ..errors import InvalidValueError

_ambient: contextvars.ContextVar = contextvars.ContextVar("gpubp_observers", default=())


def check_observer(name, observer):
    """``observer`` when it has a ``forward`` or a ``backward`` method (or both), else refused."""
    if not any(callable(getattr(observer, event, None)) for event in ("forward", "backward")):
        raise InvalidValueError(f"{name}: the observer must have a forward(model, i, layer, X, Y) or a "
                                f"backward(model, i, layer, dY, dX) method, got {observer!r:.60}")
    return observer


def observer_list(name, observers) -> list:
    """``observers`` (a model's ``observers``) as a list of observers, each checked."""
    if isinstance(observers, (str, bytes)) or not hasattr(observers, "__iter__"):
        raise InvalidValueError(f"{name} must be a list of observers, got a {type(observers).__name__}")
    return [check_observer(f"{name}[{i}]", o) for i, o in enumerate(observers)]


@contextlib.contextmanager
def observing(observer):
    """Inside the block every model also reports each layer's forward and backward to ``observer``
    (an object with a ``forward`` or a ``backward`` method, or both)."""
    check_observer("observing", observer)
    token = _ambient.set((*_ambient.get(), observer))
    try:
        yield observer
    finally:
        _ambient.reset(token)


def observers_of(model) -> tuple:
    """The observers ``model`` tells: its own ``observers``, then those of the enclosing ``observing`` blocks."""
    return (*model.observers, *_ambient.get())


def tell(observers, event, *args):
    """Call ``event`` ("forward" or "backward") with ``args`` on each observer that has it."""
    for observer in observers:
        method = getattr(observer, event, None)
        if method is not None:
            method(*args)
