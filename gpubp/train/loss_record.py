"""Each step's mean loss kept on the device, one float64 slot per step (``LossRecord``): a step
costs one copy and no host sync; the sum over the steps, and the first step whose loss was not
finite, are read once, at the end of an epoch or of an evaluation.
"""
from __future__ import annotations

import numpy as np

from .._compat import to_host
from ..losses.base import returned_value


class LossRecord:
    """L_s, the mean loss of step s over its n_s samples (a 0-d array in the model's dtype), kept in
    float64 on the device: ``float(record)`` is sum_s n_s L_s (a long float32 epoch's sum is not
    rounded to float32 as it grows), ``first_nonfinite()`` the first step whose L_s is NaN/Inf.
    A step that adds nothing (a rank holding no sample of it) counts 0 samples of loss 0.
    ``loss`` is the loss whose values these are (named where one is not a mean: a loss of one's own)."""

    __slots__ = ("values", "counts", "loss")

    def __init__(self, backend, steps: int, loss):
        with backend.activate():
            self.values = backend.zeros(steps, np.float64)
        self.counts = np.zeros(steps)  # n_s, on the host
        self.loss = loss

    def add(self, step: int, value, n: int) -> None:
        """Step ``step``'s mean loss ``value`` over ``n`` samples: one copy on the device. A value that
        is not one number (per-sample losses, say) is refused, naming the loss (``returned_value``)."""
        self.values[step] = returned_value(self.loss, value)
        self.counts[step] = n

    def host(self) -> np.ndarray:
        """The steps' losses on the host (one transfer)."""
        return to_host(self.values)

    def __float__(self) -> float:
        losses, taken = self.host(), self.counts > 0
        return float(losses[taken] @ self.counts[taken])

    def first_nonfinite(self) -> int | None:
        """The first step whose loss was NaN/Inf, or None."""
        bad = np.flatnonzero(~np.isfinite(self.host()))
        return int(bad[0]) if bad.size else None
