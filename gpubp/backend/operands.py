"""How the backend reads and speaks of what it is given: host values read (masked or ragged refused,
an object array's numbers taken), arrays described (kind, device, dtype, shape),
NumPy subclasses whose operators mean other things (``foreign``), a failed operation or allocation
turned into a gpubp error that names every operand (``operand_error``, ``allocation_error``), and
the non-finite count of an array.
"""
from __future__ import annotations

import math
import numbers
import operator

import numpy as np

from .._compat import is_cupy_array, to_host
from ..errors import DTypeError, DeviceError, GpubpError, InvalidValueError, OutOfMemoryError, ShapeError


def read_host(x) -> np.ndarray:
    """``x`` (a list, a number, a NumPy or CuPy array) as a host array; masked values and ragged
    lists refused."""
    if np.ma.is_masked(x):
        raise InvalidValueError(f"{int(np.ma.count_masked(x))} masked (missing) value(s) would be read as the "
                                f"values under the mask; fill them (x.filled(v)) or drop them")
    try:
        return to_host(x)
    except ValueError as exc:  # ragged lists
        raise ShapeError(f"not a rectangular array ({exc})") from None
    except (TypeError, RuntimeError) as exc:  # what refuses to be read: a PyTorch tensor that requires grad,
        # on a GPU, sparse or bfloat16, each saying what it needs; the message names the object and passes it on
        raise InvalidValueError(f"cannot read {describe(x)} as numbers ({type(exc).__name__}: {exc}); pass a "
                                f"NumPy array") from None


def real_numbers(host):
    """``host``, or, when it is an object array whose every entry is a real number (a table's
    ``.values`` of mixed columns), those numbers as NumPy reads them (a float or integer array)."""
    if host.dtype == object and host.size and all(isinstance(v, numbers.Real) for v in host.flat):
        return np.array(host.tolist())
    return host


def first_odd(host) -> str:
    """For an object array: " holding <its first entry that is no real number>" ("" if none)."""
    odd = next((v for v in host.flat if not isinstance(v, numbers.Real)), _NONE) if host.dtype == object else _NONE
    if odd is _NONE:
        return ""
    return " holding None (a missing value?)" if odd is None else f" holding {type(odd).__name__} {odd!r:.40}"


_NONE = object()


def numeric_dtype(dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.kind not in "iubf":
        raise DTypeError(f"asarray: dtype must be a numeric dtype such as 'float32' or 'int64', got {dtype!r}")
    return dt


FOREIGN = {np.ma.MaskedArray: "whose mask a layer's kernels would read through",
           np.matrix: "for which * is a matrix product and reductions stay 2-d"}


def foreign(x) -> str:
    """Why ``x``, a NumPy array of a subclass whose operators mean other things (``FOREIGN``), is no
    array a layer computes with ("" for any other ``x``): a masked array's kernels would read through
    its mask (or its results carry one), a matrix's ``*`` is a matrix product and its reductions stay 2-d."""
    return next((why for kind, why in FOREIGN.items() if isinstance(x, kind)), "")


MATMUL = "(n, k) @ (k, m) -> out (n, m)"


def given(**operands) -> dict:
    """``operands`` without those that are None (an ``out`` not given)."""
    return {name: x for name, x in operands.items() if x is not None}


def operand_error(what, exc, backend=None, rule="", **operands) -> GpubpError:
    """The gpubp error for ``exc``, what NumPy or CuPy raised when operation ``what`` ran on
    ``operands`` ({name: array}; looked at only once it failed, so a working call pays nothing): a
    DTypeError for an operand that is not an array of real numbers, a DeviceError for an array on
    another device than ``backend``'s, else a ShapeError (for a ValueError) or DTypeError (for a
    TypeError) naming every operand's dtype and shape, ``rule`` (the shapes it takes) and why."""
    for name, x in operands.items():
        if name == "host_values":  # host numbers: anything NumPy reads as an array
            try:
                x = operands[name] = np.asarray(x)
            except ValueError:
                return ShapeError(f"{what}: {name} is not a rectangular array")
        if not (hasattr(x, "dtype") and hasattr(x, "shape")):
            return DTypeError(f"{what}: {name} is {describe(x)}{'' if x is None else f' {x!r:.40}'}, not an array")
        elif foreign(x):
            return InvalidValueError(f"{what}: {name} is {describe(x)}, {foreign(x)}; pass a plain array")
        elif backend is not None and not backend.is_own(x) and (isinstance(x, np.ndarray) or is_cupy_array(x)):
            return DeviceError(f"{what}: {name} is {describe(x)}, not an array on {backend.device}; "
                               f"move it with backend.asarray(x)")
        elif getattr(x.dtype, "kind", "") not in "iubf":
            return DTypeError(f"{what}: {name} is {describe(x)}; it takes arrays of real numbers")
    listing = ", ".join(f"{name} {_brief(x)}" for name, x in operands.items())
    rule = f" (it takes {rule})" if rule else ""
    if isinstance(exc, GpubpError) and not isinstance(exc, (ShapeError, DTypeError)):
        return exc  # a device or memory error from below: already says what happened
    reason = ": " + str(exc).splitlines()[0] if str(exc) else ""
    kind = DTypeError if isinstance(exc, TypeError) else ShapeError
    return kind(f"{what}: cannot take {listing}{rule}{reason}")


def _brief(x) -> str:
    if hasattr(x, "dtype") and hasattr(x, "shape"):
        return f"{x.dtype} {tuple(x.shape)}"
    return f"a {type(x).__name__} {x!r:.40}"


def allocation_error(what, shape, dtype, exc) -> GpubpError:
    """The gpubp error for ``exc``, what allocating ``what`` of ``shape`` and ``dtype`` raised: the
    shape or dtype named when it is none, else the size asked for (OutOfMemoryError)."""
    dims = (shape,) if isinstance(shape, numbers.Integral) else shape
    try:
        dims = tuple(operator.index(n) for n in dims)
        if isinstance(shape, (bool, np.bool_)) or min(dims, default=0) < 0:
            raise TypeError
    except TypeError:
        return ShapeError(f"{what}: shape must be a whole number or a tuple of whole numbers >= 0, got {shape!r:.80}")
    try:
        itemsize = np.dtype(dtype).itemsize
    except TypeError:
        return DTypeError(f"{what}: dtype must be a dtype such as 'float32', got {dtype!r:.60}")
    if not isinstance(exc, (MemoryError, OverflowError)) and "exceed" not in str(exc) and "too big" not in str(exc):
        return InvalidValueError(f"{what}: cannot make an array of shape {dims} and dtype {dtype!r:.60}: {exc}")
    return OutOfMemoryError(f"{what}: an array of shape {dims} holds {math.prod(dims):.3g} values, "
                            f"{math.prod(dims) * itemsize / 2**30:.3g} GiB: more than there is memory for")


def count_nonfinite(xp, x) -> int:
    """Number of NaN/Inf entries of ``x`` (0 for integer arrays)."""
    kind = getattr(getattr(x, "dtype", None), "kind", None)
    if kind is None:
        raise DTypeError(f"count_nonfinite: expected an array, got {describe(x)}")
    if kind not in "fc":
        return 0
    return int(x.size - xp.count_nonzero(xp.isfinite(x)))


def describe(x) -> str:
    """Short description of an array's kind, device, dtype and shape for error messages."""
    if is_cupy_array(x):
        return f"a CuPy array on cuda:{x.device.id} ({x.dtype}, shape {tuple(x.shape)})"
    if isinstance(x, np.ndarray):  # a subclass by its name: "a NumPy MaskedArray", "a NumPy memmap"
        kind = "array" if type(x) is np.ndarray else type(x).__name__
        return f"a NumPy {kind} ({x.dtype}, shape {x.shape})"
    return f"a {type(x).__name__}"
