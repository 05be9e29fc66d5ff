"""Images given to fit as raw pixels: whole numbers from 0 up to at most 255 (uint8 or not). fit
takes X as given, and a model drawn for inputs of about unit scale trains slowly or not at all on
them (a small CNN on the digits as 0..255: a loss of 1.9 after 4 epochs where 0..1 reaches 0.13),
so they are warned of once per array, naming the range and the fix; the command line standardises
its own images for the same reason. Rows of whole numbers (ages, counts) are not images: not warned of.

fit also keeps the range of the images it trained a model on (``remember_range``), and predict and
evaluate warn of images far outside it or spanning a small part of it (``check_range``: 0..255 pixels
for a model trained on 0..1), by the command line's rule (which refuses such images, naming the file)."""
from __future__ import annotations

import warnings

from ..errors import GpubpWarning

SAMPLE = 100_000  # values looked at for whole numbers: an even spread over X, at most this many
FAR, NARROW = 10, 20  # new data this many training spans outside its range, or spanning 1/NARROW of it


def warn_raw_pixels(backend, X, what, name) -> bool:
    """Warn when ``X`` (on ``backend``) holds images (N, C, H, W) whose values are whole numbers
    from 0 up to 2..255: pixels as an image file stores them, not scaled. True when it warned."""
    if X.ndim != 4 or not X.size:
        return False
    lo, hi = float(X.min()), float(X.max())
    if lo < 0 or not 2 <= hi <= 255:
        return False
    xp = backend.xp
    sample = X.reshape(-1)[::max(1, X.size // SAMPLE)]
    if not bool(xp.all(sample == xp.floor(sample))):
        return False
    fix = f"{name} / 255 for 8-bit pixels" if hi > 127 else f"{name} / {hi:g}, or {name} / 255 for 8-bit pixels"
    warnings.warn(f"{what}: {name} holds images whose values are whole numbers from {lo:g} to {hi:g}: raw pixels? "
                  f"{what} takes them as given, and a model drawn for inputs of about unit scale trains slowly or "
                  f"not at all on them; scale them ({fix}), and new images the same way", GpubpWarning,
                  stacklevel=3)
    return True


def remember_range(model, X):
    """Keep [min, max] of the images ``X`` fit trains ``model`` on (not kept for rows: none checked)."""
    model.__dict__["_fit_range"] = (float(X.min()), float(X.max())) if X.ndim == 4 and X.size else None


def check_range(model, X, what, name):
    """Warn when images ``X`` lie far outside the range of those fit last trained ``model`` on, or span a
    small part of it: scaled otherwise than the training images, they are answered with certainty."""
    fitted = model.__dict__.get("_fit_range")
    if fitted is None or X.ndim != 4 or not X.size:
        return
    (lo, hi), x_lo, x_hi = fitted, float(X.min()), float(X.max())
    seen, trained = f"{name}'s values run from {x_lo:.4g} to {x_hi:.4g}", f"the {lo:.4g} to {hi:.4g} of the images"
    verdict, pixels = scale_mismatch((lo, hi), (x_lo, x_hi), name)
    if verdict == "far":
        warnings.warn(f"{what}: {seen}, far outside {trained} fit trained this model on{pixels}; scale them as the "
                      f"training images were (answers this far out are guesses)", GpubpWarning, stacklevel=3)
    elif verdict == "narrow":
        warnings.warn(f"{what}: {seen}, a small part of {trained} fit trained this model on{pixels}; scale them as "
                      f"the training images were", GpubpWarning, stacklevel=3)


def scale_mismatch(trained, seen, name) -> tuple:
    """How values running from ``seen`` = (lo, hi) stand to the ``trained`` range, by the one rule fit and
    the command line share: ("far", hint) when they lie more than FAR training spans outside it,
    ("narrow", hint) when they span less than 1/NARROW of it, else (None, ""); the hint names 0..255 and
    0..1 pixels and their fix (``name`` / 255, ``name`` * 255) where the ranges are those, else ""."""
    (lo, hi), (x_lo, x_hi) = trained, seen
    span = hi - lo
    if span > 0 and (x_hi > hi + FAR * span or x_lo < lo - FAR * span):
        return "far", (f" (0..255 pixels for a model trained on 0..1? {name} / 255)"
                       if lo >= 0 and hi <= 1 < x_hi <= 255 else "")
    if span > 0 and x_hi > x_lo and (x_hi - x_lo) * NARROW < span:
        return "narrow", (f" (0..1 pixels for a model trained on 0..255? {name} * 255)"
                          if x_lo >= 0 and x_hi <= 1 < hi <= 255 else "")
    return None, ""
