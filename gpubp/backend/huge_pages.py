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
from pathlib import Path

import numpy as np

from .host_memory import refuse_beyond_free

SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")  # Linux's: "always [madvise] never"
PAGE = 1 << 21  # bytes of a huge page (x86-64, arm64 with 4 KiB base pages)
LINE = 64  # bytes of a cache line (``lines_apart``)
_ADVICE = getattr(mmap, "MADV_HUGEPAGE", None)  # Linux only
_live = [0]  # bytes of the regions alive


def zeros(sizes, dtype) -> list:
    """Flat arrays of zeros of ``sizes`` (elements) and ``dtype``, in one region on huge pages where
    they fill a whole one, else each NumPy's own."""
    dtype = np.dtype(dtype)
    starts, end = lines_apart(sizes, dtype.itemsize)
    if _ADVICE is None or end * dtype.itemsize < PAGE:
        return [np.zeros(n, dtype) for n in sizes]
    refuse_beyond_free("zeros", (end,), dtype)  # a mapping is promised lazily, as NumPy's memory is
    region = _region(end * dtype.itemsize).view(dtype)
    return [region[s:s + n] for s, n in zip(starts, sizes)]


def lines_apart(sizes, itemsize) -> tuple[list, int]:
    """``(starts, end)`` of arrays of ``sizes`` elements laid one after the other, each on a cache line
    and one line after the last ends (no two then start at one offset of a 4 KiB page, where a load
    and a store 4 KiB apart stall as one address), in elements of ``itemsize`` bytes."""
    line, starts, at = max(1, LINE // itemsize), [], 0
    for n in sizes:
        at = -(-at // line) * line + (line if starts else 0)
        starts.append(at)
        at += n
    return starts, at


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


def status() -> str:
    """Whether a region's whole 2 MiB pages become huge pages here: "yes (...)" naming Linux's
    transparent huge page setting, or "no (...)" saying why not."""
    if _ADVICE is None:
        return "no (the system has no madvise: not Linux)"
    try:
        text = SETTING.read_text()
        setting = text[text.index("[") + 1:text.index("]")]
    except (OSError, ValueError):
        return f"no ({SETTING} cannot be read)"
    return f"{'no' if setting == 'never' else 'yes'} (transparent huge pages: {setting})"
