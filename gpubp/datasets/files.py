"""Your own data: a CSV with a header row (UTF-8, or gzip-compressed), or an ``.npz`` holding ``X`` and ``y``.

A CSV's target column (``target=``, default the last) becomes ``y``, as does an .npz's target array
(``target=``, default the array ``y``); every other column is a
numeric feature. For classification the classes are the target's distinct values, kept as a
list of labels (numbers sorted numerically, anything else as text), and ``y`` holds their
indices; for regression ``y`` is the target as floats, shape (N, 1). Every bad value is named
with its file, line and column. The file is read by csv_file.py or npz_file.py, its targets by
targets.py; ``Scaler`` (scaler.py) standardises the features.
"""
from __future__ import annotations

import math
import numbers
from collections import abc
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._checks import broken_link, flag
from ..errors import InvalidValueError
from .csv_file import read_csv
from .npz_file import read_npz
from .targets import encode_labels, float_targets, label_key


@dataclass
class Table:
    """Features ``X`` (float64, (N, F) or images (N, C, H, W); an .npz's (N, H, W) as (N, 1, H, W)), targets
    ``y`` (int64 class indices, or float64 (N, k); None when the file has no target), and what they mean;
    ``precision``: the float type X had in the file (an .npz's float16 or float32, else float64), whose
    rounding steps ``Scaler.fit(X.astype(precision))`` takes as no spread."""

    X: np.ndarray
    y: np.ndarray | None
    features: list
    target: str | None
    classes: list | None
    precision: type = np.float64


def load_table(path, target=None, regression=False, features=None, classes=None,
               require_target=True) -> Table:
    """Read ``path`` (``.csv`` or ``.npz``) as a :class:`Table`.

    Args:
        target: what to predict: a CSV's column (default: the last one), or an .npz's array (default: ``y``;
            an .npz with arrays X, y and y_coarse reads y_coarse as the target for ``target="y_coarse"``).
            A name the file does not hold is refused, naming the columns or arrays it has.
        regression: float targets instead of classes.
        features: the feature columns a trained model expects (by name, any order in the
            file); default every column but the target. An .npz's X columns are named x0, x1, ... by
            position: features given for one must be those, in order.
        classes: the labels a trained model knows; a target value outside them is refused.
        require_target: False to read the features only (prediction): the target column,
            present or not, is left out of ``X`` and not read (``y`` is None), so labels a
            new file leaves empty or holds outside ``classes`` do not stop it.
    """
    try:
        path = Path(path)
    except TypeError:
        raise InvalidValueError(f"data file must be a path, got {path!r}") from None
    regression, require_target = flag("regression", regression), flag("require_target", require_target)
    if target is not None and not isinstance(target, str):
        raise InvalidValueError(f"target must be a column name, got {target!r:.80}")
    features = None if features is None else _names("features", features, "column names", str)
    if features is not None and len(set(features)) != len(features):
        raise InvalidValueError(f"features {features} name a column more than once")
    if features == []:
        raise InvalidValueError("features [] name no column; a model reads at least one")
    if classes is not None:
        classes = _names("classes", classes, "labels")
        odd = [c for c in classes if not isinstance(c, (str, numbers.Real)) or c != c
               or c in (math.inf, -math.inf) or isinstance(c, str) and not c.strip()]
        if odd:  # was: every label of the file refused as "not one of the model's classes [None, 1]"
            raise InvalidValueError(f"classes {classes!r:.80} hold {odd[0]!r:.40}, which is no label: a class is "
                                    f"text or a finite number")
        if len(classes) < 2:
            raise InvalidValueError(f"classes {classes} name {len(classes)} class(es); classification needs two or more")
        keys = [label_key(str(c)) for c in classes]
        if len(set(keys)) != len(keys):
            raise InvalidValueError(f"classes {classes} name a class more than once")
    if path.is_dir():
        raise InvalidValueError(f"data file {path} is a folder; gpubp reads one file: a CSV, or an .npz of arrays "
                                f"(images: load them into one array X (N, C, H, W) and save X and y with "
                                f"np.savez(path, X=X, y=y))")
    if path.exists() and not path.is_file():  # reading a pipe with no writer would wait forever
        raise InvalidValueError(f"data file {path} is a pipe or a device, not a file (process substitution, "
                                f"/dev/stdin?); write it to a file and give that")
    if not path.is_file():
        raise InvalidValueError(f"data file {path} does not exist{broken_link(path)}")
    if path.suffix.lower() == ".npz":
        X, raw, names, target, precision = read_npz(path, target, features, require_target)
    else:
        (X, raw, names, target), precision = read_csv(path, target, features, require_target), np.float64
    if raw is None:
        return Table(X, None, names, None, classes, precision)
    if regression:
        y = float_targets(raw, path, target)
        return Table(X, y.reshape(len(y), -1), names, target, None, precision)
    labels, y = encode_labels(raw, classes, path, target)
    return Table(X, y, names, target, labels, precision)


def _names(name, value, what, kind=object) -> list:
    """``value`` as a list (a string would be read as one name per character); a set or a dict is refused:
    the order of the names is the order of X's columns or of the class indices, and a set has none
    (its order of strings changes from run to run)."""
    if isinstance(value, (abc.Set, abc.Mapping)):
        raise InvalidValueError(f"{name} must be a list of {what}, in order, got a {type(value).__name__} "
                                f"{value!r:.80}: its order is not one you chose (a set's changes from run to run); "
                                f"give a list")
    try:
        names = None if isinstance(value, (str, bytes)) else list(value)
    except TypeError:
        names = None
    if names is None or not all(isinstance(v, kind) for v in names):
        raise InvalidValueError(f"{name} must be a list of {what}, got {value!r:.80}")
    return names
