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

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor

BLOCK = 1 << 18  # elements per block: 1 MiB of float32 per operand (measured, see above)
LENT_BLOCK = 1 << 16  # the block where scratch is lent (``sizes``)
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


def sizes(scratch_arrays: int = 0, lent: int | None = None) -> tuple[int, int]:
    """``(one_pass, block)``: a kernel over at most ``one_pass`` elements runs as one pass, a longer
    one in blocks of ``block``. Where scratch is lent (a step plan's spent buffers: ``lent`` elements)
    and the kernel takes ``scratch_arrays`` of them, blocks are of ``LENT_BLOCK``: every block reuses
    the same piece of the lent buffer, which stays in this core's cache; the rest of that buffer was
    last written by the step's GEMMs, on every core. Measured inside whole planned steps of the
    benchmark's (a) at two threads, its SGD update took a third less time than with blocks of 2^18
    (350 against 520 us); blocks of 2^17 did as well as 2^16, of 2^14 and 2^15 worse (their Python).
    A lent buffer with no room for one block leaves the kernel its own scratch."""
    if lent is not None and scratch_arrays and lent // scratch_arrays >= LENT_BLOCK:
        return LENT_BLOCK, LENT_BLOCK
    return 2 * BLOCK - 1, BLOCK  # no short block left after one of BLOCK


def workers(n: int) -> int:
    """The threads ``in_blocks`` shares ``n`` elements among: ``threads()`` from ``THREADED`` on, else 1."""
    return 1 if n < THREADED else threads()


def in_blocks(fn, n: int, block: int = BLOCK, contexts=None) -> None:
    """``fn(lo, hi)`` over [0, n) in pieces of ``block``; from ``THREADED`` elements the
    pieces are shared, in contiguous runs, among ``workers(n)`` threads, the j-th run inside
    ``contexts[j]`` where given (each thread's piece of lent scratch)."""
    starts, count = range(0, n, block), workers(n)

    def run(part, context=None):
        with context or contextlib.nullcontext():
            for lo in part:
                fn(lo, min(lo + block, n))
    if count == 1:
        run(starts)
        return
    pool = _pool.get(count)
    if pool is None:
        pool = _pool[count] = ThreadPoolExecutor(count, "gpubp-kernel")
    share = -(-len(starts) // count)
    list(pool.map(run, [starts[i:i + share] for i in range(0, len(starts), share)], contexts or [None] * count))


if hasattr(os, "register_at_fork"):  # a forked child has none of its parent's threads
    os.register_at_fork(after_in_child=_pool.clear)
