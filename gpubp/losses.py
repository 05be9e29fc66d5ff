"""Losses: ``forward(Y, T)`` returns the mean loss, ``backward(out=None)`` returns dL/dY.

All are means over the batch, so dL/dY carries the factor 1/N. Logit losses
work from raw scores and are evaluated in their stable forms (no overflow for
any finite logit): BCE via max(z, 0) - z t + log(1 + exp(-|z|)), softmax
cross-entropy via log-sum-exp with a max shift.

``backward(out=...)`` writes dL/dY into a given buffer. The forward's intermediate
arrays come from ``_buf``: fresh arrays, or the buffers a step plan (gpubp/plan/)
lends through ``work`` for the length of its step, so a planned step allocates none.
"""
from __future__ import annotations

import contextlib
import functools
import math

from ._checks import takes_out
from .backend import backend_of
from .backend.kernels import activations
from .errors import DeviceError, DTypeError, GpubpError, InvalidValueError, ShapeError, StateError
from .nn.base import check_out


class Loss:
    """Base class: remembers what ``backward`` needs from the last ``forward``."""

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
        raise NotImplementedError

    def backward(self):
        raise NotImplementedError

    def check_targets(self, Y, T) -> None:
        """Check a whole target array ``T`` once for outputs shaped like ``Y`` (``fit`` does,
        before training), so that batches inside ``targets_checked()`` skip what needs a device
        sync. Nothing to check by default."""

    def _array_targets(self, T):
        """Refuse targets that are no array (a list) or hold no numbers before their values are read."""
        if not hasattr(T, "ndim") or not hasattr(T, "dtype"):
            raise DeviceError(f"{type(self).__name__} targets: expected a NumPy or CuPy array, got a "
                              f"{type(T).__name__}; convert it with backend.asarray(T)")
        if T.dtype.kind not in "iubf":
            raise DTypeError(f"{type(self).__name__} targets: expected numbers, got an array of {T.dtype}")

    @contextlib.contextmanager
    def targets_checked(self):
        """Block in which ``forward`` trusts what ``check_targets`` already checked."""
        before, self._trusted = getattr(self, "_trusted", False), True
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
                value = self.forward(Y, T)
                if backward_out:
                    self.backward(out=dY)
                else:
                    dY[...] = self.backward()
            finally:
                self.work = None
            return value
        return run

    def _saved(self, name, out=None):
        """What ``forward`` saved for ``backward`` (StateError before any forward), with ``out``
        checked: None, or a writable buffer of the predictions' shape and dtype for dL/dY."""
        if not hasattr(self, name):
            raise StateError(f"{type(self).__name__}.backward called before forward (or after a forward that failed)")
        saved = getattr(self, name)
        check_out(self.backend, out, saved.shape, f"{type(self).__name__}.backward out", "predictions, as dL/dY")
        return saved


class MSE(Loss):
    """L = mean((Y - T)^2) over all elements; dL/dY = 2 (Y - T) / N.

    For one sample with one output this is the seeds' squared error (y_hat - y)^2.
    """

    _saves = ("diff",)

    def forward(self, Y, T):
        self._begin(Y, T)
        T = self._float_targets(Y, T)
        return self._value(Y, T, self._buf("diff", Y.shape), self._buf("square", Y.shape), self._buf("value", ()))

    def _value(self, Y, T, diff, square, value):
        """mean((Y - T)^2) into ``value``, keeping diff = Y - T (in ``diff``) for backward."""
        xp = self.backend.xp
        self.T, self.diff = T, xp.subtract(Y, T, out=diff)
        return self._mean(xp.multiply(diff, diff, out=square), Y.size, value)

    def backward(self, out=None):
        diff = self._saved("diff", out)
        return self.backend.xp.multiply(diff, 2.0 / diff.size, out=out)

    def bind(self, Y, T, dY, work):
        if type(self).forward is not MSE.forward or type(self).backward is not MSE.backward:
            return super().bind(Y, T, dY, work)  # a subclass's own methods, as they are
        # The plan fixed the shapes, dtypes and device of Y and T (MSE checks nothing else).
        self.backend = backend_of(Y)
        value = functools.partial(self._value, Y, T, work["diff"], dY, work["value"])  # squares in dY first
        backward = functools.partial(self.backward, dY)

        def run():
            v = value()
            backward()
            return v
        return run

    def workspace(self, Y, T):
        return {"diff": (Y.shape, Y.dtype), "value": ((), Y.dtype)}  # the squares go where dL/dY will


class BinaryCrossEntropy(Loss):
    """BCE from logits z with targets t in [0, 1]:

    L = mean(max(z, 0) - z t + log(1 + exp(-|z|)));  dL/dz = (sigmoid(z) - t) / N.
    """

    _saves = ("Z",)

    def forward(self, Z, T):
        xp = self._begin(Z, T)
        T = self._float_targets(Z, T)
        if not getattr(self, "_trusted", False):  # a device sync per batch unless fit checked all targets
            self.check_targets(Z, T)
        self.Z, self.T = Z, T
        terms, log_term = self._buf("terms", Z.shape), self._buf("log_term", Z.shape)
        xp.maximum(Z, 0, out=terms)
        terms -= xp.multiply(Z, T, out=log_term)        # max(z, 0) - z t
        xp.abs(Z, out=log_term)
        xp.negative(log_term, out=log_term)
        xp.exp(log_term, out=log_term)
        terms += xp.log1p(log_term, out=log_term)       # + log(1 + exp(-|z|))
        return self._mean(terms, Z.size)

    def backward(self, out=None):
        Z = self._saved("Z", out)
        dZ = self.backend.apply(activations.sigmoid, Z, out=out)
        dZ -= self.T
        dZ *= 1.0 / self.Z.size
        return dZ

    def workspace(self, Z, T):
        return {"terms": (Z.shape, Z.dtype), "log_term": (Z.shape, Z.dtype), "value": ((), Z.dtype)}

    def check_targets(self, Z, T):
        """Targets must lie in [0, 1] (the loss has no minimum otherwise): one device sync for all of ``T``."""
        self._array_targets(T)
        if T.size:
            lo, hi = float(T.min()), float(T.max())  # NaN if any is: refused too
            if not (lo >= 0 and hi <= 1):
                raise InvalidValueError(f"BinaryCrossEntropy: targets must be in [0, 1], got values in [{lo:g}, {hi:g}]"
                                        + (" (NaN among them)" if math.isnan(lo) else ""))


class SoftmaxCrossEntropy(Loss):
    """Softmax cross-entropy from logits Z of shape (N, C).

    Targets are integer class labels (N,) or rows of non-negative weights (N, C): one-hot,
    probabilities, or any other row sums s_n = sum_c T_nc (e.g. per-sample weights).
    L = mean_n(sum_c T_nc (logsumexp(Z_n) - Z_nc));  dL/dZ = (softmax(Z) * s - T) / N,
    which is (softmax(Z) - T) / N for labels and rows summing to 1 (no extra pass then).
    """

    _saves = ("log_probs",)

    def forward(self, Z, T):
        xp = self._begin(Z, T, ndim=2)
        self.T = self._targets(Z, T)
        column, rows = (Z.shape[0], 1), self._buf("rows", Z.shape)
        self.row_sums = self.T.sum(axis=1, keepdims=True, out=self._buf("row_sums", column)) \
            if T.ndim == 2 else None
        log_probs = self._buf("log_probs", Z.shape)
        xp.subtract(Z, Z.max(axis=1, keepdims=True, out=self._buf("row_max", column)), out=log_probs)  # shifted
        log_norm = xp.exp(log_probs, out=rows).sum(axis=1, keepdims=True, out=self._buf("log_norm", column))
        xp.log(log_norm, out=log_norm)
        self.log_probs = xp.subtract(log_probs, log_norm, out=log_probs)  # shifted - log_norm
        # log 0 (a -inf logit, or a shift past the float range) as the lowest float instead of -inf,
        # so that a class of probability 0 adds 0 log 0 = 0, not NaN, for a target weight of 0
        xp.maximum(log_probs, float(xp.finfo(Z.dtype).min), out=log_probs)
        return self._mean(xp.multiply(self.T, self.log_probs, out=rows), -Z.shape[0])

    def backward(self, out=None):
        log_probs = self._saved("log_probs", out)
        dZ = self.backend.xp.exp(log_probs, out=out)
        if self.row_sums is not None:
            dZ *= self.row_sums
        dZ -= self.T
        dZ *= 1.0 / dZ.shape[0]
        return dZ

    def check_targets(self, Z, T):
        """Integer labels must lie in [0, C), target rows must be >= 0: one reduction and one
        device sync for all of ``T``."""
        self._array_targets(T)
        if getattr(Z, "ndim", None) != 2:
            raise ShapeError(f"SoftmaxCrossEntropy predictions: expected a 2-d array (samples, classes), "
                             f"got {getattr(Z, 'shape', type(Z).__name__)}")
        if T.ndim == 2 and T.size:
            lo, hi = float(T.min()), float(T.max())  # NaN if any is: refused too
            if not (lo >= 0 and math.isfinite(hi)):
                raise InvalidValueError(f"SoftmaxCrossEntropy: target rows must be finite and >= 0 (probabilities "
                                        f"or weights), got values in [{lo:g}, {hi:g}]")
        if T.ndim == 1 and T.dtype.kind in "iu" and T.size:
            c = Z.shape[-1]
            lo, hi = int(T.min()), int(T.max())
            if lo < 0 or hi >= c:
                raise InvalidValueError(f"SoftmaxCrossEntropy: labels must be in [0, {c - 1}] for {c} classes, "
                                        f"got values in [{lo}, {hi}]")

    def _targets(self, Z, T):
        """One-hot/probability targets of Z's shape and dtype."""
        n, c = Z.shape
        self._array_targets(T)
        if T.dtype.kind in "iu" and T.shape == (n, 1) and c > 1:  # not float rows: they would not fit either
            raise ShapeError(f"SoftmaxCrossEntropy: integer targets of shape {tuple(T.shape)} are class labels in a "
                             f"column; give them as shape ({n},) (y.ravel()), or one-hot rows of shape ({n}, {c})")
        if T.ndim == 2:
            T = self._float_targets(Z, T)
            if not getattr(self, "_trusted", False):
                self.check_targets(Z, T)
            return T
        if T.dtype.kind not in "iu":
            raise DTypeError(f"SoftmaxCrossEntropy: 1-d targets must be integer class labels, got {T.dtype}")
        if not self.backend.is_own(T):
            self.backend.check_array(T, "SoftmaxCrossEntropy labels")
        if T.shape != (n,):
            raise ShapeError(f"SoftmaxCrossEntropy: {n} predictions but labels of shape {tuple(T.shape)}")
        if not getattr(self, "_trusted", False):  # a device sync per batch unless fit checked all labels
            self.check_targets(Z, T)
        xp = self.backend.xp  # one-hot by comparison: a bad label gives a zero row, never a wrapped index
        classes = getattr(self, "_classes", None)  # 0..c-1, kept: the same for every batch
        if classes is None or classes.shape != (c,) or not self.backend.is_own(classes):
            classes = self._classes = xp.arange(c)
        return xp.equal(T[:, None], classes[None, :], out=self._buf("one_hot", (n, c)))

    def workspace(self, Z, T):
        n, c = Z.shape
        column, table = ((n, 1), Z.dtype), ((n, c), Z.dtype)
        space = {"rows": table, "log_probs": table, "row_max": column, "log_norm": column, "value": ((), Z.dtype)}
        if T.ndim == 2:
            space["row_sums"] = column
        else:
            space["one_hot"] = table
        return space


LOSSES = {"mse": MSE, "bce": BinaryCrossEntropy, "binary_cross_entropy": BinaryCrossEntropy,
          "softmax_cross_entropy": SoftmaxCrossEntropy, "cross_entropy": SoftmaxCrossEntropy}


def get_loss(loss) -> Loss:
    """A Loss instance from a name or an instance."""
    if isinstance(loss, Loss):
        return loss
    try:
        return LOSSES[loss]()
    except (KeyError, TypeError):  # TypeError: an unhashable value such as a list
        raise InvalidValueError(f"unknown loss {loss!r}; choose one of {sorted(LOSSES)}") from None
