"""The blocked executor of the CPU kernels: cache-sized pieces, shared among threads when large.

NumPy releases the GIL inside its loops, so blocks of one large array can run on
several threads; each block is small enough that a kernel's in-place passes
re-read it from L2 instead of from memory.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

BLOCK = 1 << 16  # elements per block: 256 KiB of float32, fits in L2 with three operands
THREADED = 1 << 20  # from this many elements, blocks are shared among threads (NumPy frees the GIL)
_pool: dict = {}  # threads -> ThreadPoolExecutor


def threads() -> int:
    """Threads for large kernels: ``OMP_NUM_THREADS`` when it is a whole number >= 1 (as BLAS and
    PyTorch read it), else the cores this process may use."""
    return omp_threads() or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def omp_threads() -> int | None:
    """``OMP_NUM_THREADS`` as a whole number >= 1, or None where it is unset or not one."""
    try:
        n = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return None
    return n if n >= 1 else None


def in_blocks(fn, n: int) -> None:
    """``fn(lo, hi)`` over [0, n) in pieces of ``BLOCK``; from ``THREADED`` elements the
    pieces are shared, in contiguous runs, among ``threads()`` threads."""
    starts, workers = range(0, n, BLOCK), threads()

    def run(part):
        for lo in part:
            fn(lo, min(lo + BLOCK, n))
    if n < THREADED or workers == 1:
        run(starts)
        return
    pool = _pool.get(workers)
    if pool is None:
        pool = _pool[workers] = ThreadPoolExecutor(workers, "gpubp-kernel")
    share = -(-len(starts) // workers)
    list(pool.map(run, [starts[i:i + share] for i in range(0, len(starts), share)]))


if hasattr(os, "register_at_fork"):  # a forked child has none of its parent's threads
    os.register_at_fork(after_in_child=_pool.clear)
