"""Zeroed host arrays kept together on 2 MiB pages where Linux gives them (transparent huge pages).

A training step reads and writes the same few MiB at every step: parameters, gradients,
optimizer state, a step plan's activations. On 4 KiB pages each MiB takes 256 TLB entries; the
step's GEMMs evict the entries of everything else, and the Python that runs after them (the
optimizer's step) misses on each object it touches, several times its cost timed alone. On 2 MiB
pages the arrays take a few entries (the benchmark's (a), two threads, seven paired runs: a planned
step took 0.99-1.03x the hand-written NumPy step's time, mean 1.01, against 0.96-1.11x, mean 1.05,
on 4 KiB pages).

``zeros(sizes, dtype)`` maps one private anonymous region, starts the arrays on a 2 MiB boundary
and asks for huge pages (``madvise``) on the whole 2 MiB pages among them only: the last part
stays on 4 KiB pages, so the memory taken is the bytes asked for. Where the arrays fill no whole
2 MiB page, or the system has no ``madvise`` (not Linux), they are plain NumPy arrays. tracemalloc
does not see a region: ``live_bytes()`` counts the regions alive (a benchmark's peak adds them).
"""
from __future__ import annotations

import mmap
import weakref

import numpy as np

from .host_memory import refuse_beyond_free

PAGE = 1 << 21  # bytes of a huge page (x86-64, arm64 with 4 KiB base pages)
LINE = 64  # each array starts on a cache line, one line after the last ends (as a plan carves its arena)
_ADVICE = getattr(mmap, "MADV_HUGEPAGE", None)  # Linux only
_live = [0]  # bytes of the regions alive


def zeros(sizes, dtype) -> list:
    """Flat arrays of zeros of ``sizes`` (elements) and ``dtype``, in one region on huge pages where
    they fill a whole one, else each NumPy's own."""
    dtype = np.dtype(dtype)
    starts, at = [], 0
    for n in sizes:
        at = -(-at // LINE) * LINE + (LINE if starts else 0)  # a line apart: no two at one offset of a 4 KiB page
        starts.append(at)
        at += n * dtype.itemsize
    if _ADVICE is None or at < PAGE:
        return [np.zeros(n, dtype) for n in sizes]
    refuse_beyond_free("zeros", (at,), np.uint8)  # a mapping is promised lazily, as NumPy's memory is
    region = _region(at)
    return [region[s:s + n * dtype.itemsize].view(dtype) for s, n in zip(starts, sizes)]


def _region(nbytes) -> np.ndarray:
    """``nbytes`` zeroed bytes starting on a 2 MiB boundary, their whole 2 MiB pages advised huge."""
    mapped = mmap.mmap(-1, nbytes + PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)  # zeros, untouched
    whole = np.frombuffer(mapped, np.uint8)
    start = -whole.ctypes.data % PAGE
    mapped.madvise(_ADVICE, start, nbytes // PAGE * PAGE)
    region = whole[start:start + nbytes]
    _live[0] += nbytes
    weakref.finalize(whole, _freed, nbytes)  # once no array of it is left (each holds ``whole``)
    return region


def _freed(nbytes) -> None:
    _live[0] -= nbytes


def live_bytes() -> int:
    """Bytes of the regions ``zeros`` made that some array still holds."""
    return _live[0]
