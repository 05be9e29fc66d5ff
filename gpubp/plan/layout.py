"""Where a step plan's deltas and the loss's work arrays lie: in layer outputs that nothing reads
any more by the time they are written, a pool of their own only where none is free.

A step of ``n`` layers runs their forward passes, then the loss (step ``n``), then their backward
passes (steps ``n - 1`` down to ``0``). Once the forward is over, a layer's output is read only by
the backward passes that say they read it (``Layer.reads_in_backward``: a layer's own output Y,
its input X). After the last of them it is dead, and a delta written later may lie there: in an
MLP of sigmoids no backward reads a Dense output z (the sigmoid's backward reads its output), so
dL/dY, the loss's work and every delta go into the z's, where two pools as large as the widest
delta held them before. A delta is dead once the layer below that reads it as dY has run. The
model's output is never written (``StepPlan.run`` returns it).

Only sizes are placed here (the step plan owns the arrays)::

    place(sizes=[8, 8, 3], passes=[False] * 3, sources=[None, 0, 1],
          reads=[("X",), ("Y",), ("X",)], dx=[None, 8, 8], dout=3, work=3)
"""
from __future__ import annotations

from typing import NamedTuple


class Layout(NamedTuple):
    """Regions are ``("output", j)``: layer j's output buffer, or ``("pool", k)``: pool k, of
    ``pools[k]`` elements. Each array placed takes the first elements of its region."""

    pools: list        # the pools' sizes
    dout: tuple        # dL/dY of the loss
    work: tuple | None  # the loss's work arrays, one after the other (None: none)
    dx: list           # per layer, where its dX lies (None: it writes none)


def place(sizes, passes, sources, reads, dx, dout, work) -> Layout:
    """The regions of dL/dY (``dout`` elements), of the loss's work (``work`` elements, 0: none)
    and of each layer's dX (``dx[i]`` elements, None: none), given per layer i: ``sizes[i]``, its
    output's size where that output is a buffer of the plan's arena (else None), ``passes[i]``,
    whether it passes its input on, ``sources[i]``, the layer whose output is its input (None: the
    batch, or an output outside the arena), and ``reads[i]``, what its backward reads ("X", "Y")."""
    n = len(sizes)
    dead_after = _dead_after(sizes, passes, sources, reads)
    pools, free = [], list(dead_after.pop(n + 1, []))  # free: dead regions, the latest freed last

    def take(size):
        """The latest freed region holding ``size`` elements; else a free pool made larger; else a new pool."""
        for k in range(len(free) - 1, -1, -1):
            if _capacity(free[k], sizes, pools) >= size:
                return free.pop(k)
        for k in range(len(free) - 1, -1, -1):
            if free[k][0] == "pool":  # its earlier contents are spent: it may grow
                pools[free[k][1]] = size
                return free.pop(k)
        pools.append(size)
        return "pool", len(pools) - 1

    def reader(t):
        """The step that reads last what step ``t`` writes: the layer below that does not pass dY on."""
        return next((i for i in range(t - 1, -1, -1) if not passes[i]), 0)

    placed_dout = take(dout)
    dead_after.setdefault(reader(n), []).append(placed_dout)
    placed_work = take(work) if work else None
    if placed_work is not None:
        dead_after.setdefault(n, []).append(placed_work)
    placed_dx = [None] * n
    for t in range(n - 1, -1, -1):
        free += dead_after.get(t + 1, [])
        if dx[t] is not None:
            placed_dx[t] = take(dx[t])
            dead_after.setdefault(reader(t), []).append(placed_dx[t])
    return Layout(pools, placed_dout, placed_work, placed_dx)


def _dead_after(sizes, passes, sources, reads) -> dict:
    """``{step: [("output", j), ...]}``: the outputs dead once that step has run (``n + 1``: before
    the loss, read by no backward); the model's output is in none."""
    n, readers = len(sizes), {}

    def region(i):  # the output buffer of layer i: its own, or its input's when it passes that on
        return (i if sizes[i] is not None else None) if not passes[i] else sources[i]
    for i in range(n):
        for j in (sources[i] if "X" in reads[i] else None, region(i) if "Y" in reads[i] else None):
            if j is not None:
                readers.setdefault(j, []).append(i)
    final, dead = region(n - 1), {}
    for j in range(n):
        if sizes[j] is not None and j != final:
            dead.setdefault(min(readers.get(j, [n + 1])), []).append(("output", j))
    return dead


def _capacity(region, sizes, pools) -> int:
    kind, j = region
    return sizes[j] if kind == "output" else pools[j]
