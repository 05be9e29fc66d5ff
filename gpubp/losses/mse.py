"""Mean squared error, the seeds' squared error averaged over a batch."""
from __future__ import annotations

import functools

from ..backend import backend_of
from ..errors import NumericalError
from .base import Loss


class MSE(Loss):
    """L = mean((Y - T)^2) over all elements; dL/dY = 2 (Y - T) / N.

    For one sample with one output this is the seeds' squared error (y_hat - y)^2.
    """

    _saves = ("diff",)
    TORCH_OPTIONS = {"reduction": (("mean",), "the loss is the mean over every element (reduction='mean')")}

    def forward(self, Y, T):
        self._begin(Y, T)
        T = self._float_targets(Y, T)
        self._check_batch_targets(Y, T)
        return self._value(Y, T, self._buf("diff", Y.shape), self._buf("square", Y.shape), self._buf("value", ()))

    def _value(self, Y, T, diff, square, value):
        """mean((Y - T)^2) into ``value``, keeping diff = Y - T (in ``diff``) for backward."""
        xp = self.backend.xp
        self.T, self.diff = T, xp.subtract(Y, T, out=diff)
        return self._mean(xp.multiply(diff, diff, out=square), Y.size, value)

    def check_targets(self, Y, T):
        """Targets must be finite (a NaN or Inf one makes the loss and every gradient NaN or Inf): one
        device sync for all of ``T``."""
        self._array_targets(T)
        xp = backend_of(T).xp
        bad = int(T.size - xp.count_nonzero(xp.isfinite(T))) if T.dtype.kind == "f" else 0
        if bad:
            first = tuple(int(i) for i in xp.argwhere(~xp.isfinite(T))[0])
            raise NumericalError(f"MSE: targets hold {bad} NaN/Inf value(s), the first at index {first}; the loss "
                                 f"and its gradient would be NaN/Inf")

    def backward(self, out=None):
        diff = self._saved("diff", out)
        return self.backend.xp.multiply(diff, 2.0 / diff.size, out=out)

    def bind(self, Y, T, dY, work):
        if type(self).forward is not MSE.forward or type(self).backward is not MSE.backward:
            return super().bind(Y, T, dY, work)  # a subclass's own methods, as they are
        # The plan fixed the shapes, dtypes and device of Y and T (MSE checks nothing else).
        self.backend = backend_of(Y)
        diff = work["diff"]
        value = functools.partial(self._value, Y, T, diff, dY, work["value"])  # squares in dY first
        backward = functools.partial(self.backend.xp.multiply, diff, 2.0 / diff.size, out=dY)  # backward(out=dY)

        def run():
            v = value()
            backward()
            return v
        return run

    def workspace(self, Y, T):
        return {"diff": (Y.shape, Y.dtype), "value": ((), Y.dtype)}  # the squares go where dL/dY will
