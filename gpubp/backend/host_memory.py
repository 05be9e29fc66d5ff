"""Host allocations refused beyond the memory the machine has free.

NumPy's allocation of an array larger than the free memory succeeds (Linux promises memory
lazily); the array's pages are taken only as it is written, and when they run out the kernel's
OOM killer ends the process without a word: a run killed mid-epoch, its work lost. So an array of
LARGE bytes or more is first held to the memory free now, ``MemAvailable + SwapFree`` of
/proc/meminfo, and refused with an OutOfMemoryError that says both sizes. Smaller arrays, and
machines without /proc/meminfo, are not checked.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import OutOfMemoryError

LARGE = 1 << 28  # bytes: 256 MiB, from which an allocation reads /proc/meminfo (tens of microseconds)


def free_bytes() -> int | None:
    """``MemAvailable + SwapFree`` in bytes, or None where /proc/meminfo cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        return sum(int(fields[k].split()[0]) * 1024 for k in ("MemAvailable", "SwapFree"))
    except (OSError, KeyError, ValueError, IndexError):
        return None


def refuse_beyond_free(what, shape, dtype) -> None:
    """Raise OutOfMemoryError when an array of ``shape`` and ``dtype`` is LARGE or more and larger than
    the memory free now; shapes and dtypes that are no such are left to NumPy to refuse."""
    try:
        dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        values = math.prod(int(n) for n in dims)
        nbytes = values * np.dtype(dtype).itemsize
    except (TypeError, ValueError, OverflowError):
        return
    if nbytes < LARGE:
        return
    free = free_bytes()
    if free is not None and nbytes > free:
        raise OutOfMemoryError(f"{what}: an array of shape {dims} holds {values:.3g} values, {nbytes / 2**30:.3g} GiB, "
                               f"and this machine has {free / 2**30:.3g} GiB free (memory and swap): written, it would "
                               f"get the process killed. Use a smaller model or batch, or free memory")
