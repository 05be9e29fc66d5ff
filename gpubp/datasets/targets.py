"""A data file's targets and cells: class labels as indices into the classes (numbers sorted
numerically, anything else as text; "1" and "1.0" one class), regression targets as floats, a
cell as a finite number; every bad value named with its file, line (or index) and column."""
from __future__ import annotations

import math
import re

import numpy as np

from ..errors import InvalidValueError, ShapeError

MISSING = {"na", "n/a", "#n/a", "null", "none", "?", "-", "missing", "<na>"}  # how files mark a missing value


def float_targets(raw, path, target) -> np.ndarray:
    """Regression targets as float64: an .npz's array checked finite, or a CSV's cells as numbers."""
    if isinstance(raw, np.ndarray):
        if raw.dtype.kind not in "iuf":
            raise InvalidValueError(f"{path}: regression targets {target} must be numbers, got {raw.dtype}")
        bad = np.argwhere(~np.isfinite(raw))
        if len(bad):
            raise InvalidValueError(f"{path}: {target} holds NaN/Inf, the first at index {tuple(int(i) for i in bad[0])}")
        return raw.astype(np.float64)
    return np.array([number(text, path, line, target) for line, text in raw])


def encode_labels(raw, classes, path, target):
    """(labels, indices): ``classes`` when given, else the distinct values, sorted."""
    if isinstance(raw, np.ndarray) and raw.shape[1] == 1:  # a column of labels (y[:, None]): one per sample
        raw = list(enumerate(labels_of(raw[:, 0])))
    if isinstance(raw, np.ndarray):
        one_hot = raw.dtype.kind in "biuf" and raw.shape[1] > 1 and bool(((raw == 0) | (raw == 1)).all()) \
            and bool((raw.sum(axis=1) == 1).all())
        hint = ("; it looks one-hot: save its class indices, y.argmax(axis=1)" if one_hot else
                " (regression=True for several real-valued targets)")
        raise ShapeError(f"{path}: classification needs {target} with one label per sample, got shape {raw.shape}{hint}")
    empty = next((line for line, text in raw if not text.strip()), None)
    if empty is not None:
        raise InvalidValueError(f"{path}, {_where(path, empty, target)}: the label is empty; every sample "
                                f"needs one (remove the row or fill it in)")
    missing = next(((line, text) for line, text in raw if _is_nonfinite(text)), None)
    if missing is not None:  # "nan" is a missing value, not a class of its own
        raise InvalidValueError(f"{path}, {_where(path, missing[0], target)}: the label "
                                f"{missing[1].strip()!r} is not finite; every sample needs a real label (remove the "
                                f"row or fill it in)")
    if classes is None:
        _missing_among_numbers(raw, path, target)
        classes = _sorted_labels({text for _, text in raw})
    if len(classes) < 2:
        raise InvalidValueError(f"{path}: column {target!r} has only one distinct value {classes}; "
                                f"classification needs two or more (regression=True for a real-valued target)")
    index = {label_key(str(c)): i for i, c in enumerate(classes)}
    y = np.empty(len(raw), dtype=np.int64)
    for k, (line, text) in enumerate(raw):
        if label_key(text) not in index:
            raise InvalidValueError(f"{path}, {_where(path, line, target)}: {text!r} is not one of the "
                                    f"model's classes {classes}")
        y[k] = index[label_key(text)]
    return classes, y


def labels_of(y) -> list:
    """An array's values as text, each as its dtype spells it: a float32 0.1 as "0.1" (``tolist`` gave
    Python's float64 0.10000000149011612, a class of that name, and a CSV's 0.1 was no class of the model)."""
    return y.astype(str).tolist()


def _missing_among_numbers(raw, path, target):
    """Refuse a label that marks a missing value ("NA", "?", "null", ...) among labels that are otherwise
    numbers: it became a class of its own, learnt and predicted (text alone may hold "NA", North America)."""
    marks = [(line, text.strip()) for line, text in raw if text.strip().lower() in MISSING]
    if not marks:
        return
    rest = {text for _, text in raw if text.strip().lower() not in MISSING}
    if rest and not any(isinstance(c, str) for c in _sorted_labels(rest)):
        line, text = marks[0]
        raise InvalidValueError(f"{path}, {_where(path, line, target)}: the label {text!r} among numbers "
                                f"marks a missing value ({len(marks)} such row(s)), which would be a class of its own; "
                                f"every sample needs a real label (remove the rows or fill them in)")


def _sorted_labels(values) -> list:
    """Numbers sorted as numbers (kept as int where whole), else text sorted as text."""
    try:
        numbers = sorted({_label_number(v) for v in values})
    except ValueError:
        return sorted({label_key(v) for v in values})  # "1" and "1.0" beside text labels are one class
    return numbers


def _label_number(text):
    """A numeric label: an int when whole (exactly, however large), else a float; ValueError if text."""
    _plain(text)
    try:
        return int(text)
    except ValueError:
        v = float(text)
    return int(v) if v.is_integer() else v


def label_key(text) -> str:
    """The label of a target cell as ``_sorted_labels`` spells it ("1.0" and "1" are class 1)."""
    try:
        return str(_label_number(text))
    except ValueError:
        return text


def _is_nonfinite(text) -> bool:
    try:
        return not math.isfinite(to_float(text))
    except (ValueError, OverflowError):
        return False


def to_float(text) -> float:
    """``float(text)`` as a CSV's number: ValueError for Python's own spellings that no CSV means as one
    (``_plain``)."""
    return float(_plain(text))


def _plain(text) -> str:
    """``text``, ValueError if it holds "_": Python reads "2021_03" as 202103 and "1_0" as 10, where a CSV
    holds a period or a label spelled so (a label would be answered as 10)."""
    if "_" in text:
        raise ValueError(f"{text!r} holds '_'")
    return text


def number(text, path, line, column) -> float:
    """A cell as a finite float, or a refusal naming the file, line and column."""
    try:
        value = to_float(text)
    except ValueError:
        raise InvalidValueError(f"{path}, {_where(path, line, column)}: {text.strip()!r} is not "
                                f"a number{_why_not(text.strip())}") from None
    if not math.isfinite(value):
        raise InvalidValueError(f"{path}, {_where(path, line, column)}: {text.strip()!r} is not finite")
    return value


def _why_not(text) -> str:
    """What a cell that is no number may be, for the refusal: empty, a decimal comma, a thousands separator."""
    if not text:
        return " (the cell is empty: a missing value? fill it in or remove the row)"
    if text.lower() in MISSING:
        return " (it marks a missing value? fill it in or remove the row)"
    plain, point = text.replace(",", ""), text.replace(",", ".")
    if re.fullmatch(r"[+-]?\d{1,3}(,\d{3}){2,}", text):
        return f" (thousands separators? write {plain})"
    if re.fullmatch(r"[+-]?\d{1,3},\d{3}", text):  # 1,500: either
        return f" (a thousands separator, or a decimal comma? write {plain} or {point})"
    if re.fullmatch(r"[+-]?\d*,\d+", text):
        return f" (a decimal comma? write {point})"
    return ""


def _where(path, line, name) -> str:
    """Where a value is: a CSV's line and its column ``name``, an .npz's index into its array ``name``."""
    return f"{name}[{line}], column {name!r}" if path.suffix.lower() == ".npz" else f"line {line}, column {name!r}"
