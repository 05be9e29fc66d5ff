"""Timing helpers: warm-up, then the median of repeated, device-synchronised runs."""
from __future__ import annotations

import statistics
import time


def median_seconds(fn, sync=lambda: None, warmup=2, repeat=5, min_time=0.05) -> float:
    """Median wall time of ``fn()`` over ``repeat`` runs after ``warmup`` calls.

    Each timed run loops ``fn`` enough times to last ``min_time`` seconds, so
    microsecond kernels are not lost in timer noise.
    """
    for _ in range(warmup):
        fn()
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    once = max(time.perf_counter() - t0, 1e-9)
    inner = max(1, int(min_time / once))
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        sync()
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times)
