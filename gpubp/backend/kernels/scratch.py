"""Scratch arrays of the kernels' NumPy paths: made once per thread and reused, so a kernel's
NumPy path allocates nothing per call (a fresh block-sized array per call would cost a page
fault per page, every step, and a step plan promises no allocation after warm-up).

The backend launches large arrays in cache-sized blocks (``backend/_blocks.py``), possibly on
several threads, so each thread keeps its own arrays, one per (shape, dtype, k): a block's
size, and ``k`` for a kernel that needs several. Inside ``with ScratchIn(buffer):`` a scratch
array is a piece of ``buffer`` where it has room (a step plan lends its spent activations to
the optimizer's update).
"""
from __future__ import annotations

import threading

import numpy as np

_local = threading.local()  # each thread its own: blocks of one array run on several


def scratch(shape, dtype, k=0):
    """Scratch array ``k`` of ``shape`` and ``dtype``: a piece of the buffer lent by ``ScratchIn``
    when it has room, else this thread's own, made once and reused by every later call."""
    local = _local.__dict__
    lent = local.get("lent")
    if lent is not None:
        view = lent.take(shape, dtype, k)
        if view is not None:
            return view
    arrays = local.setdefault("arrays", {})
    key = (shape, np.dtype(dtype), k)
    a = arrays.get(key)
    if a is None:
        a = arrays[key] = np.empty(shape, dtype)
    return a


class ScratchIn:
    """``with ScratchIn(buffer):`` kernels run in the block (by this thread) take their scratch
    from ``buffer``, a flat C-contiguous array whose contents are spent (a step plan's activations
    and deltas once the backward pass is over), wherever it has room: no memory of their own.
    Made once and entered at every step, it keeps the views it cut."""

    def __init__(self, buffer):
        self.buffer, self._views, self._slots, self._before, self._shares = buffer, {}, {}, None, {}

    def shares(self, count) -> list:
        """``count`` ScratchIn over disjoint, equal pieces of the buffer (made once per ``count``): one
        for each thread of a kernel run in blocks on ``count`` threads."""
        made = self._shares.get(count)
        if made is None:
            size = self.buffer.size // count
            made = self._shares[count] = [ScratchIn(self.buffer[j * size:(j + 1) * size]) for j in range(count)]
        return made

    def take(self, shape, dtype, k):
        """Piece ``k`` of the buffer for an array of ``shape`` and ``dtype`` (each ``k`` its own), or
        None: no room."""
        key = (shape, dtype, k)
        view = self._views.get(key)
        if view is None:
            size = int(np.prod(shape))
            at = self._slots.setdefault(k, len(self._slots)) * size
            fits = np.dtype(dtype) == self.buffer.dtype and at + size <= self.buffer.size
            view = self._views[key] = self.buffer[at:at + size].reshape(shape) if fits else False
        return view if view is not False else None

    def __enter__(self):
        local = _local.__dict__
        self._before, local["lent"] = local.get("lent"), self
        return self

    def __exit__(self, *exc):
        _local.__dict__["lent"] = self._before


def forget_scratch() -> None:
    """Drop the calling thread's scratch arrays (the next kernel makes them anew): what a measure
    of one step's peak memory does first, so that the step's own scratch is counted."""
    _local.__dict__.pop("arrays", None)


def held() -> dict:
    """The calling thread's own scratch arrays, ``{(shape, dtype, k): array}`` (for tests)."""
    return dict(_local.__dict__.get("arrays", {}))


def lent():
    """The ``ScratchIn`` this thread is in, or None."""
    return _local.__dict__.get("lent")
