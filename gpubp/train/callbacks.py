"""The callbacks fit is given, checked before any training: objects with any of ``HOOKS`` (or a
list of them), each hook callable with fit's arguments; what is not (a dict of hooks, hooks named
otherwise) refused by what it is. A callback stops the run by setting ``history.stopped`` to why."""
from __future__ import annotations

import inspect

from ..errors import InvalidValueError

HOOKS = {"on_epoch_begin": ("epoch", "model"), "on_batch_end": ("step", "model", "loss_value"),
         "on_epoch_end": ("epoch", "model", "history")}  # each hook's arguments


def checked_callbacks(callbacks) -> tuple:
    """A tuple of callback objects from one object, a list of them, or None; every hook present
    is checked now, not after an epoch of training, to be callable with fit's arguments."""
    if callbacks is None:
        return ()
    if isinstance(callbacks, dict):
        raise InvalidValueError(f"fit: callbacks is a dict; callbacks are objects with any of the methods "
                                f"{', '.join(HOOKS)} (types.SimpleNamespace(**callbacks) makes one of a dict of them)")
    single = any(callable(getattr(callbacks, h, None)) for h in HOOKS)
    try:
        items = (callbacks,) if single or _others(callbacks) else tuple(callbacks)
    except TypeError:
        raise InvalidValueError(f"fit: callbacks must be an object with any of {', '.join(HOOKS)}, or a list "
                                f"of them; got a {type(callbacks).__name__}") from None
    for i, cb in enumerate(items):
        name = "callbacks" if items[0] is callbacks else f"callbacks[{i}]"
        first = next(j for j, other in enumerate(items) if other is cb)
        if first < i:  # each hook would run twice per event: an EpochLog writes each line twice
            raise InvalidValueError(f"fit: callbacks[{i}] is callbacks[{first}] again ({type(cb).__name__}); fit "
                                    f"calls each one given, so it would run twice per event: give it once")
        if not any(callable(getattr(cb, h, None)) for h in HOOKS):
            others = f"; it has {', '.join(_others(cb))}, which fit never calls" if _others(cb) else ""
            raise InvalidValueError(f"fit: {name} (a {type(cb).__name__}) has none of the methods "
                                    f"{', '.join(HOOKS)}{others}")
        for hook, args in HOOKS.items():
            fn = getattr(cb, hook, None)
            if fn is not None and not _takes(fn, args):
                raise InvalidValueError(f"fit: {name}.{hook} must be a method taking ({', '.join(args)}), got "
                                        f"{fn!r:.80}" + (" (a class: pass an instance of it)" if isinstance(cb, type)
                                                         else ""))
    return items


def _others(cb) -> list:
    """The methods of ``cb`` named as hooks (on_...) that fit never calls: misspelt, or another library's."""
    return sorted(h for h in dir(cb) if h.startswith("on_") and h not in HOOKS and callable(getattr(cb, h, None)))


def _takes(fn, args) -> bool:
    """Whether ``fn`` can be called with ``args`` (True when its signature cannot be read)."""
    try:
        inspect.signature(fn).bind(*args)
        return True
    except TypeError:  # not callable, or another number of arguments
        return False
    except ValueError:  # no signature to read (a builtin)
        return True


def checked_stop(history):
    """Refuse what a callback set ``history.stopped`` to, unless a string saying why the run stops (or None)."""
    said = history.stopped
    if said is not None and not (isinstance(said, str) and said.strip()):
        raise InvalidValueError(f"fit: a callback set history.stopped to {said!r:.60}; to stop the run, set it to "
                                f"a string saying why (e.g. 'reached 99% accuracy')")


def agreed_stop(history, comm=None):
    """Why a callback stopped the run (``history.stopped``, checked by ``checked_stop``), else None; with
    ``comm`` (every rank asks, once an epoch) a stop on any rank stops every rank alike."""
    said = history.stopped
    if comm is not None and comm.allreduce_scalars(float(said is not None))[0] and said is None:
        said = "a callback on another rank stopped the run"
    return said
