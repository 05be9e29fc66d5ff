"""The blocked executor of the CPU kernels: cache-sized pieces, shared among threads when large.

NumPy releases the GIL inside its loops, so blocks of one large array can run on
several threads; each block is small enough that a kernel's in-place passes
re-read it from cache instead of from memory, and large enough that the Python between
blocks costs little beside a pass over one.

The sizes were measured (one thread, then two: the SGD and Adam updates, the sigmoid and its
backward, on 2^18 to 2^24 float32 elements, on a 2-core EPYC with 1 MiB of L2 per core and
32 MiB of L3): blocks of 2^18 elements were the fastest at every size, 5-35% faster than blocks
of 2^16 (whose Python between blocks cost more than fitting in L2 saved) and up to 22% faster
than one unblocked pass over 2^22; two threads were faster from 2^20 elements on.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

BLOCK = 1 << 18  # elements per block: 1 MiB of float32 per operand (measured, see above)
THREADED = 4 * BLOCK  # from this many elements, blocks are shared among threads (NumPy frees the GIL)
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
