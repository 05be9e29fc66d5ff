"""Data read for a trained model (``predict``, ``evaluate``) as its training data was read, and its
outputs put back in the target's units."""
from __future__ import annotations

import numpy as np

from ..datasets import Scaler, load_table
from ..train import predict
from .data_checks import check_range, csv_target, file_target, fit_shape, in_cli_words, named_features


def read_for_model(path, info, target=None, require_target=False):
    """``(X, y or None, table)`` of a file read as the model's training data was: same
    features, classes and scaling; images reshaped."""
    info = info or {}
    regression = info.get("task") == "regression"
    csv_target(path, target)
    with in_cli_words():
        table = load_table(path, target=file_target(path, target or info.get("target")), regression=regression,
                           features=named_features(path, info.get("features")), classes=info.get("classes"),
                           require_target=require_target)
    X = table.X
    if info.get("shape"):
        fit_shape(X, info["shape"], path, "DATA", info.get("image"))
    check_range(X, info, path, "DATA")
    if info.get("scaler"):
        X = Scaler.from_dict(info["scaler"])(X)
    if info.get("shape"):
        X = X.reshape(len(X), *info["shape"])
    return X, table.y, table


def in_target_units(outputs, info):
    """A model's outputs in its target's units: a regression trained on a standardised target
    (``target_scaler`` in its data record) gives them scaled."""
    return Scaler.from_dict(info["target_scaler"]).inverse(outputs) if info.get("target_scaler") else outputs


def raw_mse(model, X, y, info, batch_size=1024) -> float:
    """A regression's MSE in its target's units, ``mean((out - y)^2)`` with ``y`` as read from
    the file (``X`` as the model reads it); inf where it passes float64's range (said by the caller)."""
    out = in_target_units(predict(model, X, batch_size=batch_size), info)
    with np.errstate(over="ignore"):
        return float(np.mean((out - np.asarray(y, np.float64).reshape(out.shape)) ** 2))
