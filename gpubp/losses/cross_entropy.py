"""Cross-entropies from logits, evaluated in their stable forms (no overflow for any finite
logit): binary via max(z, 0) - z t + log(1 + exp(-|z|)), softmax via log-sum-exp with a max shift.
"""
from __future__ import annotations

import math

from ..backend.kernels import activations
from ..errors import DTypeError, InvalidValueError, ShapeError
from .base import MEAN, SAME_WEIGHT, Loss


class BinaryCrossEntropy(Loss):
    """BCE from logits z with targets t in [0, 1]:

    L = mean(max(z, 0) - z t + log(1 + exp(-|z|)));  dL/dz = (sigmoid(z) - t) / N.
    """

    _saves = ("Z",)
    TORCH_OPTIONS = {"weight": SAME_WEIGHT, "reduction": MEAN,
                     "pos_weight": ((None,), "positives and negatives weigh the same (pos_weight=None)")}

    def forward(self, Z, T):
        xp = self._begin(Z, T)
        T = self._float_targets(Z, T)
        self._check_batch_targets(Z, T)
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
        dZ *= 1.0 / Z.size
        return dZ

    def workspace(self, Z, T):
        return {"terms": (Z.shape, Z.dtype), "log_term": (Z.shape, Z.dtype), "value": ((), Z.dtype)}

    def check_targets(self, Z, T):
        """Targets must lie in [0, 1] (the loss has no minimum otherwise): one device sync for all of ``T``."""
        self._array_targets(T)
        if T.size:
            lo, hi = _value_range(T)
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
    TORCH_OPTIONS = {"weight": SAME_WEIGHT, "reduction": MEAN,
                     "ignore_index": ((-100,), "every label counts, and one outside 0..C-1 is refused"),
                     "label_smoothing": ((0.0, 0), "targets count as given (label_smoothing=0.0); give smoothed "
                                                    "targets as rows of probabilities, shape (N, C)")}

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
            lo, hi = _value_range(T)
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
            self._check_batch_targets(Z, T)
            return T
        if T.dtype.kind not in "iu":
            raise DTypeError(f"SoftmaxCrossEntropy: 1-d targets must be integer class labels, got {T.dtype}")
        if not self.backend.is_own(T):
            self.backend.check_array(T, "SoftmaxCrossEntropy labels")
        if T.shape != (n,):
            raise ShapeError(f"SoftmaxCrossEntropy: {n} predictions but labels of shape {tuple(T.shape)}")
        self._check_batch_targets(Z, T)
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


def _value_range(T):
    """(min, max) of the float targets ``T`` on the host (one device sync); NaN if any is, so a
    range check refuses it too."""
    return float(T.min()), float(T.max())
