"""Whether data given to a model fits it: each sample's shape (``fit_shape``), the scale of its
values against the training data's (``check_range``), and what a file's kind takes (an .npz's
target is its array y, its X read whole)."""
from __future__ import annotations

import warnings
from contextlib import contextmanager

import numpy as np

from ..errors import GpubpError, GpubpWarning, InvalidValueError, ShapeError
from ..train.pixels import scale_mismatch


def fit_shape(X, shape, path, name, image=None):
    """Refuse ``X`` unless each sample can be read as ``shape``: the same number of values, and
    images (C, H, W) only as the model's own, ``image`` (an MLP's, kept in its record) or ``shape``
    when it is one: not the same pixels in another layout (channels last, height and width swapped)."""
    image = tuple(image or (shape if len(shape) == 3 else ()))
    per_sample, want = int(np.prod(X.shape[1:])), int(np.prod(shape))
    found = tuple(X.shape[1:]) if X.ndim == 4 else None
    if per_sample == want and (not found or not image or found == image):
        return
    if per_sample == want + 1 and not found:
        hint = "; one too many: is the target column among them? drop it"
    elif found and image and found == (*image[1:], image[0]):
        hint = "; that looks like channels last (N, H, W, C): the model reads NCHW, save X.transpose(0, 3, 1, 2)"
    elif X.size == want and len(X) > 1:
        hint = f"; X holds {want} values in all: is it one sample (an image) without its sample axis? save X[None]"
    else:
        hint = ""
    what = f"images of {image}" if image else f"{want} features"
    raise ShapeError(f"{name} {path}: the model reads {what} per sample, the file holds "
                     f"{f'images of {found}' if found else f'{per_sample} values'} per sample{hint}")


def value_range(X) -> list:
    """[min, max] of the training data as read (raw): what ``check_range`` holds new data to."""
    return [float(X.min()), float(X.max())]


def check_range(X, info, path, name):
    """Refuse images (warn of other data) whose values lie far outside the range the model was trained
    on (``info["range"]``): 0..255 pixels given to a model trained on 0..1 are standardised into values
    near 900 and answered with certainty, silently. Warn of images spanning a small part of it (0..1
    pixels for a model trained on 0..255). A record without a range (an older gpubp's) is not checked
    (``unrecorded`` says so)."""
    if not info.get("range") or not X.size:
        return
    (lo, hi), x_lo, x_hi = info["range"], float(X.min()), float(X.max())
    images = len(info.get("shape") or []) == 3 or bool(info.get("image"))
    seen, trained = f"its values run from {x_lo:.4g} to {x_hi:.4g}", f"the {lo:.4g} to {hi:.4g} of the training data"
    verdict, pixels = scale_mismatch((lo, hi), (x_lo, x_hi), "X")
    if verdict == "far":
        message = f"{name} {path}: {seen}, far outside {trained}{pixels}; scale them as the training data were"
        if images:
            raise InvalidValueError(message)
        warnings.warn(message + " (answers this far out are guesses)", GpubpWarning)
    elif verdict == "narrow" and images:
        warnings.warn(f"{name} {path}: {seen}, a small part of {trained}{pixels}; scale them as the training data "
                      f"were", GpubpWarning)


def csv_target(path, target):
    """Refuse ``--target`` with an .npz, whose target is its array y (the flag would be ignored)."""
    if target and str(path).lower().endswith(".npz"):
        raise InvalidValueError(f"--target {target} names a CSV column, but {path} is an .npz whose target is its "
                                f"array y; leave --target out")


def file_target(path, target):
    """The target to read ``path`` by: a CSV's column ``target`` (None: the last column, or the one a
    model's features leave); for an .npz always None, its array y, as the command reads it. A CSV's column
    named by a model trained on a CSV is no array of an .npz given to it (was: passed on, and refused)."""
    return None if str(path).lower().endswith(".npz") else target


CLI_WORDS = {"target=COLUMN": "--target COLUMN", "regression=True": "--loss mse"}  # load_table's, as flags


@contextmanager
def in_cli_words():
    """Refusals of ``load_table`` (which name its Python arguments: ``target=COLUMN``) in the command's
    flags (``--target COLUMN``), as the same type of error."""
    try:
        yield
    except GpubpError as exc:
        text = str(exc)
        for python, cli in CLI_WORDS.items():
            text = text.replace(python, cli)
        if text == str(exc):
            raise
        raise type(exc)(text) from None


def named_features(path, features):
    """The feature names a file must hold: a CSV's columns; an .npz's X is read whole (its shape is
    checked against the model's by ``fit_shape``, which names images as images)."""
    return None if str(path).lower().endswith(".npz") else features
