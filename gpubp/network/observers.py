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
import inspect

from ..errors import InvalidValueError

_ambient: contextvars.ContextVar = contextvars.ContextVar("gpubp_observers", default=())


EVENTS = {"forward": "model, i, layer, X, Y", "backward": "model, i, layer, dY, dX"}


def check_observer(name, observer):
    """``observer`` when it has a ``forward`` or a ``backward`` method (or both), each callable with
    the five arguments a model tells it (refused now, not at the first layer of a step), else refused."""
    if not any(callable(getattr(observer, event, None)) for event in EVENTS):
        raise InvalidValueError(f"{name}: the observer must have a forward(model, i, layer, X, Y) or a "
                                f"backward(model, i, layer, dY, dX) method, got {observer!r:.60}")
    for event, args in EVENTS.items():
        method = getattr(observer, event, None)
        if method is not None and not _takes(method, 5):
            raise InvalidValueError(f"{name}: the observer's {event} must be a method taking ({args}), got "
                                    f"{method!r:.80}" + (" (a class: pass an instance of it)"
                                                         if isinstance(observer, type) else ""))
    return observer


def _takes(method, n) -> bool:
    """Whether ``method`` can be called with ``n`` arguments (True when its signature cannot be read)."""
    try:
        inspect.signature(method).bind(*range(n))
        return True
    except TypeError:  # not callable, or another number of arguments
        return False
    except ValueError:  # no signature to read (a builtin)
        return True


def observer_list(name, observers) -> list:
    """``observers`` (a model's ``observers``) as a list of observers, each checked, also those
    added to it later (``ObserverList``)."""
    if isinstance(observers, (str, bytes)) or not hasattr(observers, "__iter__"):
        raise InvalidValueError(f"{name} must be a list of observers, got a {type(observers).__name__}")
    return ObserverList(name, [check_observer(f"{name}[{i}]", o) for i, o in enumerate(observers)])


class ObserverList(list):
    """A model's observers: a list whose entries are checked as they are added (``append``,
    ``insert``, ``extend``, ``+=``, ``[i] =``), so a junk observer is refused where it is added,
    not ignored or found at the first layer of a step."""

    def __init__(self, name, observers=()):
        super().__init__(observers)
        self._name = name

    def _checked(self, observer):
        return check_observer(f"{self._name}[{len(self)}]", observer)

    def append(self, observer):
        super().append(self._checked(observer))

    def insert(self, index, observer):
        super().insert(index, self._checked(observer))

    def extend(self, observers):
        super().extend(observer_list(self._name, observers))

    def __iadd__(self, observers):
        self.extend(observers)
        return self

    def __setitem__(self, index, value):
        value = observer_list(self._name, value) if isinstance(index, slice) else self._checked(value)
        super().__setitem__(index, value)

    def __reduce__(self):  # copies check what is added to them too
        return type(self), (self._name, list(self))


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
