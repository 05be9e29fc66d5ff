"""A process's share of a global batch, told for one step to the layers whose step depends on the
whole batch, so that N data-parallel processes take the step one process takes on the batch.

Such a layer says so (class attribute ``takes_share = True``), has an attribute ``share`` (None:
the batch it is given is the whole batch) and two methods for a process that holds no sample of a
step's batch, which must still take its part: ``idle_forward()`` (in layer order) and
``idle_backward()`` (in reverse order). A user's layer may take part the same way. Dropout draws its
mask by element of the global batch (``first``); BatchNorm sums its statistics over the shares
(``sum_``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class BatchShare:
    """``first``: where the share's first sample sits in the global batch; ``total``: the global
    batch's samples; ``sum_(arrays)``: each array replaced, in place, by its sum over every share
    (every process calls it alike, with arrays of the same shapes), or None where nothing is summed
    (Dropout needs no sum; a step plan's dry run, on one process alone, must not)."""

    first: int
    total: int
    sum_: Callable | None = None
