"""The Backend: one object owning an array module, a dtype and the kernels.

Layers, losses and optimizers never import numpy or cupy: they ask their
backend (``backend.xp``, ``backend.apply(activations.sigmoid, z)``). NumpyBackend and
CupyBackend differ only in ``xp``, in how arrays cross devices and in how a
registry kernel is launched.
"""
from __future__ import annotations

import contextlib
import functools

import numpy as np

from .. import _checks
from .._compat import to_host
from ..errors import DTypeError, DeviceError, GpubpError, InvalidValueError, NumericalError, ShapeError
from .kernels.registry import Kernel
from .host_memory import refuse_beyond_free
from .operands import (MATMUL, allocation_error, count_nonfinite, describe, first_odd, foreign, given, numeric_dtype,
                       operand_error, read_host, real_numbers)

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_float_dtype(dtype) -> np.dtype:
    """``np.dtype`` for "float32"/"float64" (any case, or the types), with a clear error otherwise
    (None too: NumPy reads it as float64)."""
    try:
        dt = None if dtype is None else np.dtype(dtype.strip().lower() if isinstance(dtype, str) else dtype)
    except TypeError:
        dt = None
    if dt is not None and dt.isnative is False and dt.newbyteorder("=") in FLOAT_DTYPES:
        name = dt.newbyteorder("=").name
        raise DTypeError(f"dtype must be float32 or float64 in this machine's byte order, got {name} of the "
                         f"other byte order ({dt.str!r}, e.g. read from a file); convert it: a.astype({name!r})")
    if dt is None or dt not in FLOAT_DTYPES:
        raise DTypeError(f"dtype must be float32 or float64, got {dtype!r}")
    return dt


class Backend:
    """Base class. Subclasses set ``xp``, ``name`` and ``device``."""

    xp = np
    name = "base"
    device = "cpu"

    def __init__(self, dtype="float32"):
        self.dtype = as_float_dtype(dtype)
        self._ones: dict = {}  # n -> ones(n), shared by sum_rows and never written

    def __repr__(self):
        return f"<{type(self).__name__} device={self.device} dtype={self.dtype.name}>"

    def __eq__(self, other):
        return isinstance(other, Backend) and (self.device, self.dtype) == (other.device, other.dtype)

    def __hash__(self):
        return hash((self.device, self.dtype))

    # -- arrays -----------------------------------------------------------------
    def is_own(self, x) -> bool:
        """True when ``x`` is an array of this backend's module on this device."""
        raise NotImplementedError

    def asarray(self, x, dtype=None):
        """Copy/convert ``x`` (list, NumPy or CuPy array) onto this device.

        Floating (and list) input becomes ``self.dtype`` unless ``dtype`` (a numeric dtype) says
        otherwise; integer arrays (class labels) keep their dtype. The copy is always C-ordered and
        native-endian (a big-endian file's values read as numbers, never its bytes); an object array
        of real numbers is read as the numbers. Refused: masked values (they would be read as the
        values under the mask), ragged lists, non-numeric values, and finite values beyond the
        target dtype's range (they would become Inf).
        """
        host = real_numbers(x if self.is_own(x) else read_host(x))
        if host.dtype.kind not in "iubf":  # object (None would become NaN), strings, complex
            raise DTypeError(f"cannot turn an array of dtype {host.dtype}{first_odd(host)} into {self.dtype} "
                             f"numbers; pass a numeric array")
        if dtype is not None:
            target = numeric_dtype(dtype)
        else:
            target = host.dtype if host.dtype.kind in "iub" else self.dtype
        target = target.newbyteorder("=")  # a device array is native-endian ('>i8' labels too)
        with np.errstate(over="ignore"):  # an overflow is refused below, not warned
            out = self._to_device(host, target)
        if host.dtype.kind == "f" and target.itemsize < host.dtype.itemsize:
            self._refuse_overflow(host, out)
        return out

    def _refuse_overflow(self, host, out):
        """Refuse ``out``, ``host`` narrowed to a smaller float dtype, when finite values became Inf."""
        if count_nonfinite(self.xp, out) > count_nonfinite(self.xp if self.is_own(host) else np, host):
            values = to_host(host)
            largest = float(np.abs(values[np.isfinite(values)]).max())
            raise NumericalError(f"holds values up to {largest:.3g}, beyond {out.dtype}'s range "
                                 f"(+-{np.finfo(out.dtype).max:.3g}), so they would become Inf; rescale them or use float64")

    def _to_device(self, host, dtype):
        raise NotImplementedError

    def to_numpy(self, x) -> np.ndarray:
        """The values of ``x`` as a NumPy array (copied from a device; NumPy input passes through)."""
        return to_host(x)

    def zeros(self, shape, dtype=None):
        """A new array of zeros of ``shape`` (whole numbers >= 0) and ``dtype`` (this backend's by default)."""
        return self._new("zeros", shape, dtype)

    def empty(self, shape, dtype=None):
        """A new array of ``shape`` and ``dtype`` (this backend's by default), its values not set."""
        return self._new("empty", shape, dtype)

    def flat_zeros(self, sizes) -> list:
        """Flat arrays of zeros of this backend's dtype, one per size, allocated together: what a step
        reads and writes at every step (parameters and gradients, optimizer slots, a plan's arena). On
        the host they lie on huge pages where they fill one (``huge_pages``)."""
        return [self.zeros((n,)) for n in sizes]

    def _new(self, make, shape, dtype):
        """``xp.<make>(shape, dtype)`` ("zeros" or "empty"), what it cannot make said by gpubp's error."""
        dtype = self.dtype if dtype is None else dtype
        if self.device == "cpu":  # host memory (a GPU's is CuPy's to refuse)
            refuse_beyond_free(make, shape, dtype)
        try:
            return getattr(self.xp, make)(shape, dtype=dtype)
        except (TypeError, ValueError, OverflowError, MemoryError) as exc:
            raise allocation_error(make, shape, dtype, exc) from None

    def sum_rows(self, a, out=None):
        """Column sums ``1^T a`` of a 2-d array as one matrix-vector product.

        The same numbers as ``a.sum(axis=0)`` up to rounding, but one BLAS call:
        several times faster than NumPy's reduction over rows (db = 1^T delta).
        """
        try:
            ones = self._ones.get(a.shape[0])
            if ones is None:
                with self.activate():
                    ones = self._ones[a.shape[0]] = self.xp.ones(a.shape[0], dtype=self.dtype)
            return self.matmul(ones, a, out=out)
        except (TypeError, ValueError, AttributeError, IndexError) as exc:
            raise operand_error("sum_rows", exc, self, "a (N, M) -> out (M,)", a=a, **given(out=out)) from None

    def address(self, a) -> int:
        """Where ``a``'s first element lies in memory."""
        try:
            return a.__array_interface__["data"][0]
        except (AttributeError, TypeError) as exc:
            raise operand_error("address", exc, self, a=a) from None

    def lives_in(self, arrays, flat) -> bool:
        """True when ``arrays`` are contiguous and lie end to end exactly over ``flat``."""
        try:
            at, end = self.address(flat), self.address(flat) + flat.nbytes
            for a in arrays:
                if a.dtype != flat.dtype or not a.flags.c_contiguous or self.address(a) != at:
                    return False
                at += a.nbytes
            return at == end
        except (AttributeError, TypeError) as exc:
            if isinstance(exc, GpubpError):
                raise
            raise InvalidValueError(f"lives_in takes a list of arrays and a flat array on {self.device}, got "
                                    f"{describe(arrays)} and {describe(flat)}") from None

    def write(self, dst, host_values) -> None:
        """``dst[...] = host_values`` (host numbers, rounded once to ``dst``'s dtype), in one copy."""
        try:
            dst[...] = np.asarray(host_values, dtype=dst.dtype)
        except (AttributeError, TypeError, ValueError) as exc:
            raise operand_error("write", exc, self, dst=dst, host_values=host_values) from None

    def matmul(self, a, b, out=None):
        """``a @ b``, into ``out`` when given: the one matrix product of the layers (CuPy's
        backend runs gpubp's own GEMM kernel instead of cuBLAS while a CUDA graph captures).
        Operands that do not fit are a ShapeError or DTypeError naming their shapes and dtypes."""
        try:
            return self.xp.matmul(a, b, out=out)
        except (TypeError, ValueError) as exc:
            raise operand_error("matmul", exc, self, MATMUL, a=a, b=b, **given(out=out)) from None

    @staticmethod
    def host_rng(seed=None) -> np.random.Generator:
        """The host RNG every initialiser draws from (identical on every device)."""
        return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(_checks.seed("seed", seed))

    def synchronize(self) -> None:
        """Wait for queued device work (a no-op on the CPU)."""

    def activate(self):
        """Context in which ``xp`` calls run on this backend's device."""
        return contextlib.nullcontext()

    def check_array(self, x, what: str = "input", ndim: int | None = None):
        """Refuse ``x`` with a clear error unless it is a ``self.dtype`` array on this device."""
        if not self.is_own(x):
            odd = foreign(x)
            if odd:
                raise InvalidValueError(f"{what}: got {describe(x)}, {odd}; pass a plain array: "
                                        f"backend.asarray(x) (backend = model.backend)")
            raise DeviceError(f"{what}: expected an array on {self.device}, got {describe(x)}; "
                              f"move it with backend.asarray(x) (backend = model.backend)")
        if x.dtype != self.dtype:
            kinds = {"b": "a bool", "i": "an integer", "u": "an integer", "O": "an object"}
            kind = kinds.get(x.dtype.kind, f"a {x.dtype}")
            raise DTypeError(f"{what}: expected {self.dtype} values, got {kind} array; "
                             f"convert it with backend.asarray(x, dtype='{self.dtype}')")
        try:
            wrong_ndim = bool(ndim is not None and x.ndim != ndim)
        except ValueError:  # an array as ndim
            raise InvalidValueError(f"check_array: ndim must be a whole number or None, got {ndim!r:.60}") from None
        if wrong_ndim:
            raise ShapeError(f"{what}: expected a {ndim}-d array, got shape {tuple(x.shape)}")
        return x

    def check_finite(self, x, what: str = "input"):
        """Refuse NaN/Inf in ``x`` with a NumericalError saying how many and where the first is."""
        bad = count_nonfinite(self.xp, x)
        if bad:
            first = np.unravel_index(int(self.xp.argmax(~self.xp.isfinite(x))), x.shape)
            raise NumericalError(f"{what} contains {bad} NaN/Inf value(s); the first at index "
                                 f"{tuple(int(i) for i in first)}")
        return x

    # -- kernels ----------------------------------------------------------------
    def launch(self, kernel, *args) -> None:
        """Run registry ``kernel`` on its inputs followed by its outputs (written in place)."""
        self.run(kernel, self._arguments(kernel, args))

    def bind(self, kernel, *args):
        """``launch(kernel, *args)`` as a function of no arguments, its arguments checked now
        (nothing runs): the launch a step plan or an optimizer repeats on the same arrays. A
        scalar may be a 0-d array of this backend, read anew at each call (a learning rate). A
        kernel that ``overflows`` warns on NumPy unless its caller holds ``np.errstate(over="ignore")``."""
        return functools.partial(self.run, kernel, self._refuse_read_only(kernel, self._arguments(kernel, args)))

    def _arguments(self, kernel, args) -> list:
        if not isinstance(kernel, Kernel):
            raise InvalidValueError(f"a launch takes a registry Kernel, such as gpubp.backend.KERNELS['sigmoid'], "
                                    f"got {kernel!r:.60}")
        expected = len(kernel.input_names) + len(kernel.output_names)
        if len(args) != expected:
            raise InvalidValueError(f"kernel {kernel.name} takes {expected} arrays/scalars, got {len(args)}")
        # Scalars become this dtype (or their declared one, ``Kernel.scalar_dtype``): a float64
        # scalar must never promote float32 arrays (NumPy 2 rules) or pick the double kernel.
        args = list(args)
        for i in kernel.scalar_positions:
            dtype = kernel.scalar_dtype(kernel.input_names[i], self.dtype)
            if not (self.is_own(args[i]) and args[i].dtype == dtype and args[i].ndim == 0):
                args[i] = dtype.type(args[i])
        # Arrays are this backend's, of its dtype and of one shape: NumPy would cast or broadcast
        # silently where CuPy refuses, so the two devices would part ways.
        shape, scalars = getattr(args[0], "shape", None), kernel.scalar_positions  # the first is an array
        for i, a in enumerate(args):
            if i not in scalars and not (self.is_own(a) and a.dtype == self.dtype and a.shape == shape):
                self._refuse_array(kernel, i, a, shape)
        return args

    @staticmethod
    def _refuse_read_only(kernel, args) -> list:
        """``args`` (as ``_arguments`` checked them), refused when an output is read-only (a broadcast
        view, ``np.frombuffer``, a memory map opened "r", set as a parameter): the kernel writes it in place."""
        names = [*kernel.input_names, *kernel.output_names]
        for i in range(len(kernel.input_names), len(args)):
            if not getattr(args[i].flags, "writeable", True):  # NumPy's read-only arrays (CuPy has none)
                raise InvalidValueError(f"kernel {kernel.name}: {names[i]} is read-only, and the kernel writes it in "
                                        f"place; give a writable array (np.array(a) is a writable copy)")
        return args

    def _refuse_array(self, kernel, i, a, shape):
        name, first = [*kernel.input_names, *kernel.output_names][i], kernel.input_names[0]
        if not (self.is_own(a) and a.dtype == self.dtype):
            raise DTypeError(f"kernel {kernel.name}: {name} is {describe(a)}; it takes {self.dtype} arrays on "
                             f"{self.device}")
        raise ShapeError(f"kernel {kernel.name}: {name} has shape {tuple(a.shape)}, {first} {tuple(shape)}; "
                         f"its arrays have one shape")

    def apply(self, kernel, *inputs, out=None):
        """Single-output kernel: ``out = kernel(*inputs)``; allocates ``out`` like the first input."""
        if out is None:
            out = self.xp.empty_like(inputs[0])
        self.launch(kernel, *inputs, out)
        return out

    def run(self, kernel, args) -> None:
        """Launch ``kernel`` on ``args`` as ``launch`` has checked them (in order, the scalars
        already in this dtype)."""
        raise NotImplementedError

    def _refuse_run(self, kernel, args, exc):
        """The error of ``run(kernel, args)`` that failed with ``exc``: ``launch``'s refusal of
        these arguments, else ``exc`` itself (raised from a kernel given what launch takes)."""
        if not isinstance(args, (list, tuple)):
            raise InvalidValueError(f"run takes a registry Kernel and a list of its arguments (as launch checks "
                                    f"them), got {describe(args)}") from None
        self._refuse_read_only(kernel, self._arguments(kernel, args))
        raise exc
