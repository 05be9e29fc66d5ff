"""evaluate() and predict(), in eval mode, and the accuracy each loss defines."""
from __future__ import annotations

import numpy as np

from .. import _checks
from ..losses import BinaryCrossEntropy, SoftmaxCrossEntropy, get_loss
from .inputs import _check_model, _features, _mode, _prepare, _probe, _warn_sigmoid_twice
from .state import _refuse_nonfinite_model


def evaluate(model, X, y, loss="softmax_cross_entropy", batch_size=1024) -> dict:
    """``{"loss": ..., "accuracy": ...}`` (accuracy for classification losses) on (X, y), in eval mode."""
    _check_model(model, "evaluate")
    _refuse_nonfinite_model(model, "evaluate")
    loss = get_loss(loss)
    _warn_sigmoid_twice(model, loss, "evaluate")
    batch_size = _checks.integer("evaluate: batch_size", batch_size, 1)
    with loss.targets_checked():
        value, metric = _evaluate(model, loss, *_prepare(model, loss, X, y, "evaluate"), batch_size=batch_size)
    result = {"loss": value}
    if metric is not None:
        result[_metric_name(loss)] = metric
    return result


def predict(model, X, batch_size=1024) -> np.ndarray:
    """Model outputs for X as a host NumPy array, computed in batches in eval mode."""
    _check_model(model, "predict")
    _refuse_nonfinite_model(model, "predict")
    batch_size = _checks.integer("predict: batch_size", batch_size, 1)
    Xd = _features(model, X, "predict", "X")
    _probe(model, Xd, "predict", "X")  # a sample the model refuses, named as the user's array
    with _mode(model, False):
        outs = [model.backend.to_numpy(model.forward(Xd[i:i + batch_size]))
                for i in range(0, Xd.shape[0], batch_size)]
    return np.concatenate(outs)


def _evaluate(model, loss, X, y, batch_size):
    """Mean loss and metric over (X, y) in eval mode (Dropout off, BatchNorm's running statistics)."""
    total, correct, n = 0.0, 0.0, X.shape[0]
    with _mode(model, False):
        for lo in range(0, n, batch_size):
            out = model.forward(X[lo:lo + batch_size])
            total = total + loss.forward(out, y[lo:lo + batch_size]) * out.shape[0]
            if _metric_name(loss):
                correct = correct + _n_correct(loss, out, y[lo:lo + batch_size])
    metric = float(correct) / n if _metric_name(loss) else None
    return float(total) / n, metric


def _metric_name(loss):
    return "accuracy" if isinstance(loss, (SoftmaxCrossEntropy, BinaryCrossEntropy)) else None


def _n_correct(loss, out, y):
    """Correct predictions in a batch, as the loss defines them: for softmax cross-entropy the
    argmax class; for BCE each output is its own yes/no (logit > 0 against target > 0.5), so a
    sample counts as the fraction of its outputs that are right."""
    if isinstance(loss, BinaryCrossEntropy):
        return ((out > 0) == (y > 0.5)).sum() / out.shape[1]
    truth = y if y.ndim == 1 else y.argmax(axis=1)
    return (out.argmax(axis=1) == truth).sum()
