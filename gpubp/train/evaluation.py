"""evaluate() and predict(), in eval mode, and the accuracy each loss defines."""
from __future__ import annotations

import numpy as np

from .. import _checks
from ..errors import NumericalError
from ..losses import BinaryCrossEntropy, SoftmaxCrossEntropy, get_loss
from ..network import Sequential
from .inputs import (_features, _mode, _prepare, _probe, _warn_sigmoid_twice, refuse_regression_targets,
                     unlabelled_rows)
from .loss_record import LossRecord
from .pixels import check_range
from .state import _refuse_nonfinite_model


def evaluate(model, X, y, loss=None, batch_size=1024) -> dict:
    """``{"loss": ..., "accuracy": ...}`` (accuracy for classification losses) on (X, y), in eval mode.
    ``loss`` defaults to softmax_cross_entropy, whose targets are then class labels, one-hot rows or
    probabilities: other rows (a regression's targets, a row of zeros) are refused, not scored as class
    weights. With softmax_cross_entropy given, a target row of zeros (weight 0, no class) is left out of
    the accuracy, with a warning naming it (y of zeros only is refused)."""
    _checks.instance("evaluate: model", model, Sequential)
    _refuse_nonfinite_model(model, "evaluate")
    defaulted, loss = loss is None, get_loss("softmax_cross_entropy" if loss is None else loss)
    _warn_sigmoid_twice(model, loss, "evaluate")
    batch_size = _checks.integer("evaluate: batch_size", batch_size, 1)
    with np.errstate(all="ignore"):
        X, y = _prepare(model, loss, X, y, "evaluate")
    if defaulted:
        refuse_regression_targets(y, "evaluate")
    unlabelled_rows(model, loss, y, "evaluate")
    check_range(model, X, "evaluate", "X")
    with loss.targets_checked(), np.errstate(all="ignore"):  # overflow is reported as a NumericalError
        value, metric = _evaluate(model, loss, X, y, batch_size=batch_size, what="evaluate")
    result = {"loss": value}
    if metric is not None:
        result[_metric_name(loss)] = metric
    return result


def predict(model, X, batch_size=1024) -> np.ndarray:
    """Model outputs for X as a host NumPy array, computed in batches in eval mode."""
    _checks.instance("predict: model", model, Sequential)
    _refuse_nonfinite_model(model, "predict")
    batch_size = _checks.integer("predict: batch_size", batch_size, 1)
    Xd = _features(model, X, "predict", "X")
    check_range(model, Xd, "predict", "X")
    with np.errstate(all="ignore"):  # overflow is reported as a NumericalError, below
        _probe(model, Xd, "predict", "X")  # a sample the model refuses, named as the user's array
    with _mode(model, False), np.errstate(all="ignore"):
        outs = [model.backend.to_numpy(model.forward(Xd[lo:hi])) for lo, hi in eval_batches(Xd.shape[0], batch_size)]
    out = np.concatenate(outs)
    _refuse_nonfinite_outputs(model, out, 0, "predict", "X")
    return out


def eval_batches(n, batch_size):
    """(start, stop) of each batch an eval pass over ``n`` samples runs, in order: ``batch_size``
    samples each, a last batch of one sample joined to the one before it (a layer normalising by
    the batch's own statistics, BatchNorm without running statistics, refuses one sample)."""
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return [(lo, min(lo + batch_size, n) if i < len(starts) - 1 else n) for i, lo in enumerate(starts)]


def _refuse_nonfinite_outputs(model, out, offset, what, name):
    """A NaN/Inf output (the input or the parameters beyond what the model's float type holds through
    its layers) refused, naming the first sample (``offset`` + its row in ``out``), never returned."""
    xp = model.backend.xp if model.backend.is_own(out) else np
    flat = out.reshape(out.shape[0], -1)
    rows = xp.isfinite(flat).all(axis=1)
    if not bool(rows.all()):
        first = int(xp.argmin(rows))
        value = flat[first][~xp.isfinite(flat[first])][0]
        raise NumericalError(f"{what}: the model's output for sample {offset + first} of {name} is {float(value)} "
                             f"({int((~rows).sum())} sample(s) in all): the values overflow "
                             f"{model.backend.dtype} in the layers; scale {name} (e.g. with gpubp.datasets.Scaler), "
                             f"or use float64")


def _evaluate(model, loss, X, y, batch_size, what, names=("X", "y")):
    """Mean loss and metric over (X, y) in eval mode (Dropout off, BatchNorm's running statistics);
    a loss that is not finite is refused with its cause (NumericalError), never returned."""
    n, batches = X.shape[0], eval_batches(X.shape[0], batch_size)
    total, correct = LossRecord(model.backend, len(batches), loss), 0.0
    with _mode(model, False):
        for step, (lo, hi) in enumerate(batches):
            out = model.forward(X[lo:hi])
            total.add(step, loss.forward(out, y[lo:hi]), out.shape[0])
            if _metric_name(loss):
                correct = correct + _n_correct(loss, out, y[lo:hi])
    metric = _accuracy(correct, scored(loss, y)) if _metric_name(loss) else None
    value = float(total) / n
    if not np.isfinite(value):
        _refuse_nonfinite_loss(model, loss, X, y, batch_size, value, what, names)
    return value, metric


def _refuse_nonfinite_loss(model, loss, X, y, batch_size, value, what, names):
    """Raise NumericalError with the cause of a NaN/Inf mean ``loss`` over (X, y), the parameters being
    finite: an output that overflowed in the layers (the first such sample named), else the loss itself
    overflowing the float type (targets far from the outputs)."""
    with _mode(model, False), np.errstate(all="ignore"):
        for lo, hi in eval_batches(X.shape[0], batch_size):
            _refuse_nonfinite_outputs(model, model.forward(X[lo:hi]), lo, what, names[0])
    xp, dtype = model.backend.xp, model.backend.dtype
    largest = float(xp.abs(y).max()) if y.dtype.kind == "f" else None
    targets = f" (|{names[1]}| up to {largest:.3g})" if largest is not None else ""
    raise NumericalError(f"{what}: the {type(loss).__name__} loss over {names[0]} and {names[1]} is {value} although "
                         f"every output is finite: it overflows {dtype}{targets}; scale the targets (e.g. with "
                         f"gpubp.datasets.Scaler), or use float64")


def _metric_name(loss):
    return "accuracy" if isinstance(loss, (SoftmaxCrossEntropy, BinaryCrossEntropy)) else None


def _n_correct(loss, out, y):
    """Correct predictions in a batch, as the loss defines them: for softmax cross-entropy the
    argmax class (a target row of zeros has none: never correct, and ``scored`` leaves it out); for
    BCE each output is its own yes/no (logit > 0 against target > 0.5), so a sample counts as the
    fraction of its outputs (all of them: (C, H, W) too) that are right."""
    if isinstance(loss, BinaryCrossEntropy):
        return ((out > 0) == (y > 0.5)).sum() / (out.size // out.shape[0])
    if y.ndim == 1:
        return (out.argmax(axis=1) == y).sum()
    return ((out.argmax(axis=1) == y.argmax(axis=1)) & (y.max(axis=1) > 0)).sum()


def scored(loss, y) -> int:
    """The samples of targets ``y`` the accuracy counts: all, but a softmax cross-entropy target row of
    zeros (weight 0: no class; ``inputs.unlabelled_rows``). One sync for such rows, none for labels."""
    if isinstance(loss, SoftmaxCrossEntropy) and y.ndim == 2:
        return int((y.max(axis=1) > 0).sum())
    return y.shape[0]


def _accuracy(correct, n) -> float:
    """``correct / n``; NaN when no sample counts (refused before fit and evaluate: not reached)."""
    return float(correct) / n if n else float("nan")
