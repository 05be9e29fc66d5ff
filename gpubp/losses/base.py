"""The Loss base class: ``forward(Y, T)`` returns the mean loss, ``backward(out=None)`` returns
dL/dY; what every loss checks (predictions, targets, ``out``) and the buffers it computes in.

All losses are means over the batch, so dL/dY carries the factor 1/N. ``backward(out=...)``
writes dL/dY into a given buffer. The forward's intermediate arrays come from ``_buf``: fresh
arrays, or the buffers a step plan (gpubp/plan/) lends through ``work`` for the length of its
step, so a planned step allocates none.
"""
from __future__ import annotations

import contextlib
import numbers

import numpy as np

from .._checks import takes_out
from ..backend import backend_of
from ..errors import DeviceError, DTypeError, GpubpError, InvalidValueError, ShapeError, StateError
from ..nn.arrays import check_out
from ..nn.windows import torch_options

MEAN = (("mean",), "the loss is the mean over the batch (reduction='mean')")
SAME_WEIGHT = ((None,), "every class and sample weighs the same (weight=None)")


class Loss:
    """Base class: remembers what ``backward`` needs from the last ``forward``. A loss takes the keyword
    arguments of PyTorch's same loss (``TORCH_OPTIONS``) at their default values only, so ported code
    reads the same; another value is refused by name (``nn.windows.torch_options``, as the layers).

    A loss of one's own subclasses it: ``forward(Y, T)`` returns the batch's mean loss, one number (a
    0-d array), and ``backward()`` (or ``backward(out=None)``, writing ``out`` or returning a new array)
    returns dL/dY, an array of Y's device, shape and dtype; fit and evaluate hold it to both
    (``returned_value``, ``returned_gradient``)."""

    TORCH_OPTIONS: dict = {}  # {name: (values meaning what this loss does, what it does)}

    def __init__(self, **options):
        torch_options(type(self).__name__, options, self.TORCH_OPTIONS)

    def __call__(self, Y, T):
        return self.forward(Y, T)

    def __repr__(self):
        return f"{type(self).__name__}()"

    _saves = ()  # the attributes forward keeps for backward (forgotten as a forward starts)

    def _begin(self, Y, T, ndim=None):
        for name in self._saves:  # a forward that fails leaves nothing for backward: no stale gradient
            self.__dict__.pop(name, None)
        try:
            self.backend = backend_of(Y)
        except GpubpError as exc:  # not an array, or not of floats: say it is the predictions
            raise type(exc)(f"{type(self).__name__} predictions: {exc}") from None
        self.backend.check_array(Y, f"{type(self).__name__} predictions", ndim=ndim)
        if Y.ndim == 0:
            raise ShapeError(f"{type(self).__name__} predictions: expected a batch of samples along the first axis, "
                             f"got a 0-d array")
        if Y.size == 0:  # the mean would divide by 0
            what = "empty batch" if Y.shape[0] == 0 else "no classes or outputs per sample"
            raise ShapeError(f"{type(self).__name__}: {what} (predictions of shape {tuple(Y.shape)})")
        return self.backend.xp

    def _float_targets(self, Y, T):
        self.backend.check_array(T, f"{type(self).__name__} targets")
        if T.shape != Y.shape:
            raise ShapeError(f"{type(self).__name__}: targets have shape {tuple(T.shape)}, "
                             f"predictions {tuple(Y.shape)}; they must match")
        return T

    def forward(self, Y, T):
        raise NotImplementedError(f"{type(self).__name__} defines no forward(Y, T): a Loss of one's own returns the "
                                  f"batch's mean loss from it, one number (a 0-d array)")

    def backward(self):
        raise NotImplementedError(f"{type(self).__name__} defines no backward(): a Loss of one's own returns dL/dY "
                                  f"from it (or from backward(out=None)), an array of the predictions' shape and dtype")

    def check_targets(self, Y, T) -> None:
        """Check a whole target array ``T`` once for outputs shaped like ``Y`` (``fit`` does,
        before training), so that batches inside ``targets_checked()`` skip what needs a device
        sync. Nothing to check by default."""

    def _check_batch_targets(self, Y, T):
        """``check_targets`` on this batch's targets (a device sync per batch), unless inside
        ``targets_checked()`` (``fit`` checked all of them once)."""
        if not self._trusted:
            self.check_targets(Y, T)

    def _array_targets(self, T):
        """Refuse targets that are no array (a list) or hold no numbers before their values are read."""
        if not hasattr(T, "ndim") or not hasattr(T, "dtype"):
            raise DeviceError(f"{type(self).__name__} targets: expected a NumPy or CuPy array, got a "
                              f"{type(T).__name__}; convert it with backend.asarray(T)")
        if T.dtype.kind not in "iubf":
            raise DTypeError(f"{type(self).__name__} targets: expected numbers, got an array of {T.dtype}")

    _trusted = False  # inside targets_checked(): check_targets already ran on all the targets

    @contextlib.contextmanager
    def targets_checked(self):
        """Block in which ``forward`` trusts what ``check_targets`` already checked."""
        before, self._trusted = self._trusted, True
        try:
            yield self
        finally:
            self._trusted = before

    work = None  # {name: array} lent by a step plan; else every intermediate is a new array

    def _buf(self, name, shape, dtype=None):
        """The lent buffer ``name`` when it has this shape and dtype, else a new empty array."""
        dtype = dtype or self.backend.dtype
        a = self.work.get(name) if self.work else None
        if a is None or a.shape != tuple(shape) or a.dtype != dtype:
            return self.backend.empty(shape, dtype)
        return a

    def workspace(self, Y, T) -> dict:
        """``{name: (shape, dtype)}`` of the intermediates ``forward(Y, T)`` takes from ``_buf``
        (what a step plan allocates once for outputs and targets shaped like these)."""
        return {}

    def _mean(self, terms, n, value=None):
        """sum(terms) / n as a 0-d array: ``value``, or the lent ``value`` buffer in a step plan
        (so a captured step writes its loss where the plan reads it), else a new one."""
        value = terms.sum(out=self._buf("value", ()) if value is None else value)
        value /= n
        return value

    def bind(self, Y, T, dY, work):
        """This loss in a step plan (gpubp/plan/): a function of no arguments that computes the
        value for the plan's outputs ``Y`` and targets ``T``, writes dL/dY into ``dY`` and
        returns the value (a 0-d array, the ``value`` of ``work``), its intermediates in the
        buffers ``work`` of ``workspace``. By default the checked methods, ``work`` lent."""
        backward_out = takes_out(self.backward)

        def run():
            self.work = work
            try:
                value = returned_value(self, self.forward(Y, T))
                if backward_out:
                    given = self.backward(out=dY)
                    if given is not dY:  # a backward that leaves ``out`` unused (was: dY left as it was)
                        dY[...] = returned_gradient(self, given, Y)
                else:
                    dY[...] = returned_gradient(self, self.backward(), Y)
            finally:
                self.work = None
            return value if hasattr(value, "shape") else backend_of(Y).xp.asarray(value, dtype=Y.dtype)
        return run

    def _saved(self, name, out=None):
        """What ``forward`` saved for ``backward`` (StateError before any forward), with ``out``
        checked: None, or a writable buffer of the predictions' shape and dtype for dL/dY."""
        if not hasattr(self, name):
            raise StateError(f"{type(self).__name__}.backward called before forward (or after a forward that failed)")
        saved = getattr(self, name)
        check_out(self.backend, out, saved.shape, f"{type(self).__name__}.backward out", "predictions, as dL/dY")
        read = {"the targets": getattr(self, "T", None),
                "the predictions" if name == "Z" else f"its saved {name}": saved}
        shared = [what for what, a in read.items() if out is not None and a is not None and self.backend.is_own(a)
                  and self.backend.xp.may_share_memory(a, out)]
        if shared:  # backward reads them as it writes out: the gradient would be wrong (0 for out=T)
            raise InvalidValueError(f"{type(self).__name__}.backward: out shares memory with {' and '.join(shared)}, "
                                    f"which backward reads as it writes out; give out a buffer of its own")
        return saved


def returned_value(loss, value):
    """``value`` when it is what a loss's forward returns, the batch's mean loss as one real number (a
    0-d array, or a number); else a ShapeError or DTypeError naming ``loss`` (a loss of one's own)."""
    name, shape = f"{type(loss).__name__}.forward", getattr(value, "shape", None)
    if shape is None and isinstance(value, numbers.Real) and not isinstance(value, bool):
        return value
    if shape is None:
        raise DTypeError(f"{name} returned a {type(value).__name__}, not the batch's mean loss: a loss's forward "
                         f"returns one number, a 0-d array")
    if tuple(shape) != ():
        raise ShapeError(f"{name} returned an array of shape {tuple(shape)}, not the batch's mean loss: a loss's "
                         f"forward returns one number, a 0-d array (e.g. losses.mean() of per-sample losses)")
    if np.dtype(value.dtype).kind not in "fiu":
        raise DTypeError(f"{name} returned a 0-d array of {value.dtype}, not a real number")
    return value


def returned_gradient(loss, dY, Y):
    """``dY`` when it is what a loss's backward returns for the predictions ``Y``: dL/dY, an array on
    Y's device of Y's shape and dtype; else a DeviceError, ShapeError or DTypeError naming ``loss``."""
    name, backend = f"{type(loss).__name__}.backward", backend_of(Y)
    if not backend.is_own(dY):
        raise DeviceError(f"{name} returned a {type(dY).__name__}, not dL/dY as an array on {backend.device} (of "
                          f"the predictions' shape {tuple(Y.shape)})")
    if dY.shape != Y.shape:
        raise ShapeError(f"{name} returned dL/dY of shape {tuple(dY.shape)}, the predictions have shape "
                         f"{tuple(Y.shape)}")
    if dY.dtype != Y.dtype:
        raise DTypeError(f"{name} returned dL/dY of dtype {dY.dtype}, the predictions are {Y.dtype}; return "
                         f"it in theirs")
    return dY
