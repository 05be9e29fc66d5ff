"""Images given to fit as raw pixels: whole numbers from 0 up to at most 255 (uint8 or not). fit
takes X as given, and a model drawn for inputs of about unit scale trains slowly or not at all on
them (a small CNN on the digits as 0..255: a loss of 1.9 after 4 epochs where 0..1 reaches 0.13),
so they are warned of once per array, naming the range and the fix; the command line standardises
its own images for the same reason. Rows of whole numbers (ages, counts) are not images: not warned of."""
from __future__ import annotations

import warnings

from ..errors import GpubpWarning

SAMPLE = 100_000  # values looked at for whole numbers: an even spread over X, at most this many


def warn_raw_pixels(backend, X, what, name):
    """Warn when ``X`` (on ``backend``) holds images (N, C, H, W) whose values are whole numbers
    from 0 up to 2..255: pixels as an image file stores them, not scaled."""
    if X.ndim != 4 or not X.size:
        return
    lo, hi = float(X.min()), float(X.max())
    if lo < 0 or not 2 <= hi <= 255:
        return
    xp = backend.xp
    sample = X.reshape(-1)[::max(1, X.size // SAMPLE)]
    if not bool(xp.all(sample == xp.floor(sample))):
        return
    fix = f"{name} / 255 for 8-bit pixels" if hi > 127 else f"{name} / {hi:g}, or {name} / 255 for 8-bit pixels"
    warnings.warn(f"{what}: {name} holds images whose values are whole numbers from {lo:g} to {hi:g}: raw pixels? "
                  f"{what} takes them as given, and a model drawn for inputs of about unit scale trains slowly or "
                  f"not at all on them; scale them ({fix}), and new images the same way", GpubpWarning,
                  stacklevel=3)
