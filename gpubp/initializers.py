"""Weight initialisers, drawn in float64 from a seeded host RNG.

Drawing on the host and then copying to the device is what makes the same seed
give bit-identical starting weights on the CPU and on the GPU.
"""
from __future__ import annotations

import math

import numpy as np

from . import _checks
from .errors import DTypeError, InvalidValueError, NumericalError, OutOfMemoryError, ShapeError

_LARGEST = np.iinfo(np.intp).max  # bytes: no array on this machine can be larger


def draw(name, rng, fan_in, fan_out, shape):
    """Initialiser ``name`` for a weight of ``shape`` with these fans (Dense: n_in, n_out; Conv2D:
    C kh kw, O kh kw, as PyTorch counts them): Glorot (xavier) U(+-sqrt(6 / (fan_in + fan_out)))
    or N(0, 2 / (fan_in + fan_out)); He U(+-sqrt(6 / fan_in)) or N(0, 2 / fan_in), for ReLU layers."""
    if not (isinstance(name, str) and name in INITIALIZERS):
        raise InvalidValueError(f"unknown initialiser {name!r}; choose one of {sorted(INITIALIZERS)}")
    _checks.generator(f"{name}: rng", rng)
    fan_in, fan_out = _checks.integer(f"{name}: fan_in", fan_in, 1), _checks.integer(f"{name}: fan_out", fan_out, 1)
    if not isinstance(shape, (tuple, list)):
        raise InvalidValueError(f"{name}: shape must be a tuple of whole numbers, got {shape!r:.80}")
    shape = tuple(_checks.integer(f"{name}: shape", n, 0) for n in shape)
    addressable(f"{name}: a weight", shape)
    family, _, dist = name.partition("_")
    fans = fan_in + fan_out if family in ("xavier", "glorot") else fan_in
    try:
        if dist == "normal":
            return rng.normal(0.0, np.sqrt(2.0 / fans), size=shape)
        limit = np.sqrt(6.0 / fans)
        return rng.uniform(-limit, limit, size=shape)
    except MemoryError as exc:  # NumPy's words name the size too
        raise OutOfMemoryError(f"out of memory ({exc}): {name} draws a weight of shape {shape}, "
                               f"{math.prod(shape) * 8 / 2**30:.3g} GiB of float64 on the host; ask for a smaller "
                               f"model") from None


def addressable(what, shape, itemsize=8):
    """Refuse, before anything is allocated, a ``shape`` whose array of ``itemsize``-byte numbers
    (a float64 host draw by default) is larger than any array can be on this machine."""
    size = math.prod(shape)
    if size * itemsize > _LARGEST:
        raise OutOfMemoryError(f"{what} of shape {tuple(shape)} would hold {size:.3g} numbers, {size * itemsize:.3g} "
                               f"bytes: more than any array can hold ({_LARGEST:.3g} bytes)")


def xavier_uniform(rng, n_in, n_out):
    """A Dense weight (n_in, n_out), Glorot uniform, U(+-sqrt(6 / (n_in + n_out)))."""
    return draw("xavier_uniform", rng, *_dense("xavier_uniform", n_in, n_out))


def xavier_normal(rng, n_in, n_out):
    """A Dense weight (n_in, n_out), Glorot normal, N(0, 2 / (n_in + n_out))."""
    return draw("xavier_normal", rng, *_dense("xavier_normal", n_in, n_out))


def he_uniform(rng, n_in, n_out):
    """A Dense weight (n_in, n_out), He uniform, U(+-sqrt(6 / n_in))."""
    return draw("he_uniform", rng, *_dense("he_uniform", n_in, n_out))


def he_normal(rng, n_in, n_out):
    """A Dense weight (n_in, n_out), He normal, N(0, 2 / n_in)."""
    return draw("he_normal", rng, *_dense("he_normal", n_in, n_out))


def _dense(name, n_in, n_out):
    """fan_in, fan_out and shape of a Dense weight, n_in and n_out checked under their own names."""
    n_in, n_out = _checks.integer(f"{name}: n_in", n_in, 1), _checks.integer(f"{name}: n_out", n_out, 1)
    return n_in, n_out, (n_in, n_out)


INITIALIZERS = {f.__name__: f for f in (xavier_uniform, xavier_normal, he_uniform, he_normal)}
INITIALIZERS.update(glorot_uniform=xavier_uniform, glorot_normal=xavier_normal)


def get_initializer(init):
    """An initialiser by name, or a callable ``init(rng, n_in, n_out)`` passed through."""
    if callable(init):
        return init
    try:
        return INITIALIZERS[init]
    except (KeyError, TypeError):  # TypeError: an unhashable init
        raise InvalidValueError(f"unknown initialiser {_checks.named(init)}; choose one of {sorted(INITIALIZERS)}") from None


def checked_weight(W, shape, what) -> np.ndarray:
    """An initialiser's draw ``W`` as a float64 host array, refused (naming the layer ``what``)
    unless it holds finite real numbers of ``shape``: a user's callable may return anything."""
    try:
        W = np.asarray(W)
    except (TypeError, ValueError):  # a device array, a ragged list
        raise DTypeError(f"{what}: the weight initialiser returned a {type(W).__name__}, not an array of "
                         f"numbers on the host") from None
    if W.dtype.kind not in "iuf":
        raise DTypeError(f"{what}: the weight initialiser returned {W.dtype} values, not real numbers")
    try:
        shape = tuple(_checks.integer("shape", n, 0) for n in shape)
    except (TypeError, InvalidValueError):
        raise InvalidValueError(f"checked_weight: shape must be a tuple of whole numbers >= 0, got {shape!r:.80}") from None
    if W.shape != shape:
        raise ShapeError(f"{what}: the weight initialiser returned shape {W.shape}, expected {shape}")
    if not np.isfinite(W).all():
        raise NumericalError(f"{what}: the weight initialiser returned NaN/Inf values")
    return W.astype(np.float64, copy=False)
