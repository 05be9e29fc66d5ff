"""Scaling: step time as batch, width and depth double, and peak memory per step (eager, and
planned: the plan's buffers included) against the theoretical bytes.

Doubling the batch at fixed width shows where a step stops being launch-bound
(constant time) and becomes GEMM-bound (time doubles); doubling the width
quadruples the GEMM work; doubling the depth doubles the number of launches.
"""
from __future__ import annotations

import time

from .memory import peak_bytes
from .mlp import gpubp_step
from .timing import median_seconds

BASE = {"batch": 64, "width": 128, "depth": 4}


def shape(batch, width, depth):
    return [width] * (depth + 1), "sigmoid", batch


def theoretical_bytes(widths, batch, itemsize=4) -> int:
    """Parameters, gradients and SGD-free state, input and target batch, and the
    activations one step must hold (each Dense output and each activation output)."""
    params = sum(a * b + b for a, b in zip(widths, widths[1:]))
    data = batch * (widths[0] + widths[-1])
    activations = batch * (2 * sum(widths[1:-1]) + widths[-1])
    return (2 * params + data + activations) * itemsize


def bench_scaling(device, points=4, repeat=3, deadline=None) -> list[dict]:
    """Each knob doubled ``points - 1`` times from BASE; stops before a point that starts
    after ``deadline`` (a ``time.monotonic()`` value), returning the rows measured by then."""
    rows = []
    for knob in ("batch", "width", "depth"):
        for k in range(points):
            if deadline is not None and time.monotonic() > deadline:
                return rows
            cfg = dict(BASE, **{knob: BASE[knob] * 2 ** k})
            widths, act, batch = shape(**cfg)
            step, backend, _ = gpubp_step(widths, act, batch, device)
            ms = median_seconds(step, backend.synchronize, repeat=repeat, min_time=0.1) * 1e3
            del step, backend
            peak = peak_bytes(lambda: gpubp_step(widths, act, batch, device))
            planned = peak_bytes(lambda: gpubp_step(widths, act, batch, device, planned=True))
            rows.append({"vary": knob, **cfg, "ms": ms, "peak_bytes": peak, "planned_peak_bytes": planned,
                         "theoretical_bytes": theoretical_bytes(widths, batch)})
    return rows
