"""Kernel bandwidth: every registry kernel against a plain copy of the same bytes
and against the unfused NumPy/CuPy expression it replaces (its ``reference``)."""
from __future__ import annotations

import numpy as np

from ..backend import KERNELS
from ..backend._blocks import in_blocks
from ..backend.kernels import sample_arguments
from .timing import median_seconds


def bytes_moved(kernel, n, itemsize) -> int:
    """Bytes a perfect kernel must move: each array input read, each output written,
    and outputs updated in place (``param -= ...``, state on the right-hand side) read too."""
    arrays_in = len(kernel.input_names) - len(kernel.scalars)
    read_outs = sum(kernel.reads(o) for o in kernel.output_names)
    return (arrays_in + len(kernel.output_names) + read_outs) * n * itemsize


def copy(backend, dst, src) -> None:
    """dst[...] = src the fastest way the device has: on the CPU in the same threaded
    blocks as the kernels (a single np.copyto uses one core)."""
    if backend.device == "cpu":
        in_blocks(lambda lo, hi: np.copyto(dst[lo:hi], src[lo:hi]), src.size)
    else:
        backend.xp.copyto(dst, src)


def bench_kernels(backend, n=1 << 24, repeat=5, seed=0) -> list[dict]:
    """One row per kernel: ms, GB/s, fraction of copy bandwidth, speed-up over the unfused form."""
    xp, rng = backend.xp, np.random.default_rng(seed)
    rows = []
    for kernel in KERNELS.values():
        ins, outs = sample_arguments(kernel, backend.dtype, rng, n)
        ins = [backend.asarray(a) if np.ndim(a) else a for a in ins]
        outs = [backend.asarray(a) for a in outs]
        nbytes = bytes_moved(kernel, n, backend.dtype.itemsize)
        src = backend.zeros((nbytes // 2 // backend.dtype.itemsize,))
        dst = xp.empty_like(src)
        with backend.activate():
            t_copy = median_seconds(lambda: copy(backend, dst, src), backend.synchronize, repeat=repeat)
            t_fused = median_seconds(lambda: backend.launch(kernel, *ins, *outs),
                                     backend.synchronize, repeat=repeat)
            t_ref = median_seconds(lambda: kernel.reference(*ins, *outs), backend.synchronize, repeat=repeat)
        rows.append({"kernel": kernel.name, "formula": kernel.formula, "elements": n, "bytes": nbytes, "ms": t_fused * 1e3,
                     "GB_per_s": nbytes / t_fused / 1e9, "copy_GB_per_s": 2 * src.nbytes / t_copy / 1e9,
                     "fraction_of_copy": (nbytes / t_fused) / (2 * src.nbytes / t_copy),
                     "unfused_ms": t_ref * 1e3, "speedup_vs_unfused": t_ref / t_fused})
        ins = outs = src = dst = None  # freed before the next kernel's arrays are made
    return rows
