"""Flat buckets: arrays laid end to end in one preallocated buffer, cut into buckets of a few MB.

A collective per parameter pays the network's latency once per array (a 10-layer net: 20
calls). Instead the arrays are copied (and scaled) into one contiguous buffer allocated once,
and the buffer is reduced in ``ceil(total bytes / bucket_bytes)`` contiguous slices, one
collective per slice: big enough to run at the link's bandwidth, small enough to pipeline
(and, later, to overlap with the backward pass). Each bucket is a view of the flat buffer, so
after the collectives ``unpack`` copies the results back into the arrays in place.

Works on NumPy and CuPy arrays alike (``xp``); every array of one plan shares one dtype.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _checks
from ..backend.host_memory import refuse_beyond_free
from ..errors import DTypeError, GpubpError, InvalidValueError, ShapeError
from ..initializers import addressable

DEFAULT_BUCKET_BYTES = 4 << 20  # 4 MiB: PyTorch DDP uses 25 MB, Horovod's fusion buffer 64 MB; our nets are small


class FlatBuckets:
    """One flat buffer for arrays of ``shapes`` and ``dtype`` on ``xp`` (allocated here, or
    ``flat``, one the arrays already live in), and its bucket views.

    ``pack(arrays, scale)`` writes ``flat[offset_i : offset_i + size_i] = scale * arrays[i].ravel()``;
    ``buckets`` are ``flat[k * per : (k + 1) * per]`` with ``per = bucket_bytes // itemsize``;
    ``unpack(arrays)`` writes each slice back into its array (in place).
    """

    def __init__(self, shapes, dtype, xp=np, bucket_bytes=DEFAULT_BUCKET_BYTES, flat=None):
        self.shapes = _shapes(shapes)
        self.dtype = _dtype(dtype)
        if not callable(getattr(xp, "zeros", None)):
            raise InvalidValueError(f"FlatBuckets: xp must be an array module (numpy or cupy), got {xp!r:.60}")
        self.xp = xp
        sizes = [math.prod(s) for s in self.shapes]
        addressable("FlatBuckets: a flat buffer", (sum(sizes),), self.dtype.itemsize)
        self.offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).tolist()
        bucket_bytes = _checks.integer("bucket_bytes", bucket_bytes, minimum=1)
        self.per_bucket = max(1, bucket_bytes // self.dtype.itemsize)  # elements per bucket
        if flat is None and xp is np:  # NumPy's own MemoryError would name none of this
            refuse_beyond_free("FlatBuckets: a flat buffer", (self.offsets[-1],), self.dtype)
        self.flat = xp.zeros(self.offsets[-1], dtype=self.dtype) if flat is None else flat  # or one given
        if getattr(self.flat, "shape", None) != (self.offsets[-1],) or getattr(self.flat, "dtype", None) != self.dtype:
            raise ShapeError(f"FlatBuckets: a flat buffer of {self.offsets[-1]} {self.dtype.name}, got "
                             f"{_brief(self.flat)}")
        self.buckets = [self.flat[lo:lo + self.per_bucket] for lo in range(0, self.offsets[-1], self.per_bucket)]

    def __repr__(self):
        return (f"FlatBuckets({len(self.shapes)} arrays, {self.flat.nbytes} bytes of {self.dtype.name} "
                f"in {len(self.buckets)} buckets of <= {self.per_bucket * self.dtype.itemsize} bytes)")

    def views(self):
        """Each array's slice of the flat buffer, in order."""
        return [self.flat[lo:hi] for lo, hi in zip(self.offsets, self.offsets[1:])]

    def pack(self, arrays, scale=None) -> None:
        """Copy ``arrays`` (times ``scale``, a Python number) into the flat buffer; ``scale == 0``
        writes zeros without reading them (a rank with no samples has no gradients)."""
        self._check(arrays)
        if isinstance(scale, np.ndarray):  # ``scale == 1`` would be an array
            scale = _scale(scale)
        for a, view in zip(arrays, self.views()):
            if scale is None or scale == 1:
                view[...] = a.reshape(-1)
            elif scale == 0:
                view.fill(0)
            else:  # a Python float is a weak scalar: float32 arrays stay float32 (NumPy 2, CuPy)
                self.xp.multiply(a.reshape(-1), _scale(scale), out=view)

    def unpack(self, arrays) -> None:
        """Copy each slice of the flat buffer back into its array, in place."""
        self._check(arrays)
        for a, view in zip(arrays, self.views()):
            a[...] = view.reshape(a.shape)

    def _check(self, arrays):
        try:
            if len(arrays) != len(self.shapes):
                raise ShapeError(f"FlatBuckets: planned for {len(self.shapes)} arrays, got {len(arrays)}")
            for i, (a, shape) in enumerate(zip(arrays, self.shapes)):
                if tuple(a.shape) != shape:
                    raise ShapeError(f"FlatBuckets: array {i} has shape {tuple(a.shape)}, the plan says {shape}")
                if a.dtype != self.dtype:
                    raise DTypeError(f"FlatBuckets: array {i} is {a.dtype}, the plan is {self.dtype.name}")
        except (TypeError, AttributeError) as exc:  # not a list of arrays
            if isinstance(exc, GpubpError):
                raise
            raise InvalidValueError(f"FlatBuckets: takes a list of {len(self.shapes)} arrays, got "
                                    f"{[_brief(a) for a in arrays] if isinstance(arrays, (list, tuple)) else _brief(arrays)}") from None


def _shapes(shapes) -> list:
    """``shapes`` as a list of tuples of whole numbers >= 0, else an InvalidValueError naming it."""
    try:
        return [tuple(_checks.integer("a dimension", d, minimum=0) for d in s) for s in shapes]
    except (TypeError, InvalidValueError):
        raise InvalidValueError(f"FlatBuckets: shapes must be a list of tuples of whole numbers >= 0, "
                                f"got {shapes!r:.80}") from None


def _dtype(dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dtype is None or dt is None or dt.kind not in "iuf":
        raise DTypeError(f"FlatBuckets: dtype must be a numeric dtype such as 'float32', got {dtype!r:.60}")
    return dt


def _scale(scale) -> float:
    """``scale`` as a finite Python float (a weak scalar), else an InvalidValueError."""
    try:
        s = float(scale)
    except (TypeError, ValueError):
        s = math.nan
    if not math.isfinite(s):
        raise InvalidValueError(f"FlatBuckets.pack: scale must be a finite number, got {scale!r:.60}")
    return s


def _brief(a) -> str:
    return f"{a.dtype} {tuple(a.shape)}" if hasattr(a, "dtype") and hasattr(a, "shape") else f"a {type(a).__name__}"
