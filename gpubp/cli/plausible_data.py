"""Whether your own data's target and features look like what they are meant to be: a target of
measurements, ids or labels spelled two ways, or a feature column that numbers the rows, is
refused or warned of before a model learns from it."""
from __future__ import annotations

import warnings

import numpy as np

from ..errors import GpubpWarning, InvalidValueError


def plausible_classes(table, path):
    """Refuse a target of non-whole numbers (a measurement: each value would be a class of its
    own), and warn of one with more classes than half its rows (an id, a count, a price?)."""
    fraction = next((c for c in table.classes if isinstance(c, float)), None)
    if fraction is not None:
        raise InvalidValueError(f"--data {path}: the target {table.target!r} holds numbers that are not whole "
                                f"(such as {fraction}), which as classes would each be one of their own; for a "
                                f"real-valued target give --loss mse")
    n, rows = len(table.classes), len(table.y)
    numbers = not any(isinstance(c, str) for c in table.classes)
    if n > rows / 2 or (numbers and n > 10 and rows < 5 * n):  # a price in whole dollars, a count
        few = "most classes have a single sample" if n > rows / 2 else f"a class has {rows / n:.1f} samples on average"
        warnings.warn(f"--data {path}: the target {table.target!r} has {n} distinct values in {rows} rows, so "
                      f"{few}: is it the column to predict (--target), or a real-valued target (--loss mse)?",
                      GpubpWarning)
    spelled: dict = {}
    for c in table.classes:
        spelled.setdefault(str(c).casefold(), []).append(str(c))
    twins = next((names for names in spelled.values() if len(names) > 1), None)
    if twins:  # a spreadsheet's autocorrect ("Yes", "yes"): one class spelled two ways, the model taught to tell them
        warnings.warn(f"--data {path}: the target {table.target!r} holds labels that differ only in case: "
                      f"{' and '.join(map(repr, sorted(twins)))}, each a class of its own; if they are one, spell "
                      f"them alike", GpubpWarning)


def plausible_features(table, path):
    """Warn of a feature column that numbers the rows (each whole number of a run once: an id, a row
    number), from which a model learns the order of the file (sorted by class?), not the samples."""
    if table.X.ndim != 2 or len(table.X) < 10:  # images have no id column
        return
    values = np.sort(table.X, axis=0)
    counting = (values[0] == np.floor(values[0])) & (np.diff(values, axis=0) == 1).all(axis=0)
    for j in np.flatnonzero(counting):
        warnings.warn(f"--data {path}: the feature {table.features[j]!r} holds each whole number from "
                      f"{values[0, j]:g} to {values[-1, j]:g} once, one per row: a row number or an id, from which "
                      f"a model learns the file's order, not the samples? drop that column", GpubpWarning)
