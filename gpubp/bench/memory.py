"""Memory measures of a step: its peak (model, data and the step's own arrays) and what it
allocates per step after warm-up."""
from __future__ import annotations

import gc
import tracemalloc

from .._compat import cupy, gpu_status
from ..backend.huge_pages import live_bytes
from ..backend.kernels.scratch import forget_scratch


def peak_bytes(make_step) -> int:
    """Peak bytes held during one step: the model, its data and the step's own arrays.

    CPU: tracemalloc (NumPy reports its allocations to it), plus the regions on huge pages made
    meanwhile (``huge_pages``: mapped, not seen by tracemalloc). CuPy: bytes the memory pool holds
    afterwards (it keeps freed blocks, so this is the step's high-water mark), less what it held
    before the step was made (the arrays of earlier measurements still alive in this process).
    Garbage of the making (arrays only a reference cycle holds) is collected first on both.
    """
    gc.collect()
    pool = _cupy_pool()
    base = 0
    if pool is not None:
        pool.free_all_blocks()
        base = pool.used_bytes()
    regions = live_bytes()
    tracemalloc.start()
    try:
        step, backend, model = make_step()
        gc.collect()
        if pool is not None:
            pool.free_all_blocks()
        forget_scratch()  # the update's scratch, made by an earlier step of another model, is counted anew
        tracemalloc.reset_peak()  # forget the host-side initialisation draws
        step()
        backend.synchronize()
        if backend.name == "cupy":
            return int(pool.total_bytes()) - base
        return tracemalloc.get_traced_memory()[1] + live_bytes() - regions
    finally:
        tracemalloc.stop()


def _cupy_pool():
    """CuPy's default memory pool where a GPU works (a step on it may follow), else None."""
    return cupy.get_default_memory_pool() if gpu_status(0)[0] else None


def allocated_per_step(step, backend, steps=5) -> int:
    """Bytes a step allocates on top of what is live, after two warm-up steps: tracemalloc's
    peak on the CPU (0 for a planned step), on CuPy the growth of the pool's used bytes."""
    for _ in range(2):
        step()
    backend.synchronize()
    if backend.name == "cupy":
        pool = backend.xp.get_default_memory_pool()
        before = pool.used_bytes()
        for _ in range(steps):
            step()
        backend.synchronize()
        return max(0, int(pool.used_bytes() - before))
    return traced_allocation(step, steps)[0]


def traced_allocation(step, steps) -> tuple:
    """``(peak, left)``: the bytes of host memory ``steps`` calls of ``step`` allocate on top of what
    is live (tracemalloc), at their peak and after the last."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for _ in range(steps):
            step()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return int(peak - base), int(current - base)
