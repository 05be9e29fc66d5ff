"""CuPy over NumPy, for running the gpu-marked tests' Python paths on a machine without a GPU.

Not a GPU proof (the numbers are NumPy's): a dress rehearsal of the CuPy branches, as strict as CuPy
about what most often breaks a first GPU run, each rule read in CuPy 14's source:

* host arrays are refused where CuPy refuses them: a NumPy array as an operand of an arithmetic
  operation, a ufunc or a kernel (``TypeError: Unsupported type``, cupy/_core/_scalar.pyx), as the
  value of ``a[...] =`` or ``copyto`` (``ValueError: non-scalar numpy.ndarray ...``), and a CuPy array
  turned into a NumPy one implicitly (``np.asarray(a)``: ``TypeError``); ``ndarray.set`` takes only a
  NumPy array of the same shape and dtype into a contiguous array;
* only the names CuPy has exist: an attribute of an array or of the module that the installed
  CuPy lacks is an AttributeError here too; a reduction returns a 0-d array, as on a GPU;
* every array a CuPy operation makes comes from the memory pool: its hooks are called (gpubp's
  capture guard is one) and its used and total bytes are counted;
* a CUDA graph records, it does not run: between ``begin_capture`` and ``end_capture`` an operation
  writing into existing arrays (``out=``, in-place operators, ``a[...] =``, kernels) is recorded with
  its arrays and the values of its scalars as they are then, and runs at each ``Graph.launch``; one
  allocating an array gets it from the pool (and runs at launch into it); reading a value to the host,
  synchronizing and cuBLAS (``matmul``, refused by CuPy while capturing) raise as they would there;
* an ``ElementwiseKernel`` runs the registry kernel of its name by its reference formula, after CuPy's
  checks of its arguments (arrays on the device, one dtype per type placeholder); a ``RawKernel``
  is gpubp's GEMM, run as ``np.matmul``.

What it cannot do raises FakeLimit (NCCL across ranks, other raw kernels, several devices). Installed by
tests/conftest.py when ``GPUBP_FAKE_CUPY=1``; ``tests/backend/test_fake_gpu.py`` runs the gpu-marked
tests so and holds that every failure there is a FakeLimit.
"""
from __future__ import annotations

import functools
import inspect
import re
import sys
import threading
import time
import types
import weakref

import numpy as np


class FakeLimit(NotImplementedError):
    """What this fake cannot do; a test failing with it says nothing about gpubp."""


class CaptureError(RuntimeError):
    """What CUDA refuses while a stream captures (a host read or sync: cudaErrorStreamCaptureUnsupported)."""


def _real_cupy():
    """The installed CuPy (its names are the API surface), or None."""
    try:
        import cupy as real
        import cupy.lib.stride_tricks  # noqa: F401  (loaded, so that its names are known)
        import cupy.linalg  # noqa: F401
    except Exception:  # no CuPy at all: NumPy's names, less strict
        return None
    return real


REAL = _real_cupy()
MODULE_NAMES = None if REAL is None else set(dir(REAL))
ARRAY_NAMES = None if REAL is None else set(dir(REAL.ndarray))

# ---------------------------------------------------------------- the capture and the pool

_state = threading.local()


def _recording():
    return getattr(_state, "recording", None)


def _check_host_read(what):
    if _recording() is not None:
        raise CaptureError(f"cudaErrorStreamCaptureUnsupported: {what} while a stream captures (a host sync)")


class _Pool:
    def __init__(self):
        self.used, self.total, self.limit = 0, 0, 0

    def _malloc(self, nbytes, device_id=0):
        size = max(512, -(-int(nbytes) // 512) * 512)
        for hook in list(_hooks().values()):
            hook.malloc_preprocess(device_id=device_id, size=size, mem_size=size)
        if self.limit and self.used + size > self.limit:
            raise cuda.memory.OutOfMemoryError(size, self.used, self.limit)
        self.used += size
        self.total = max(self.total, self.used)
        return size

    def _free(self, size):
        self.used -= size

    def used_bytes(self):
        return self.used

    def total_bytes(self):
        return self.total

    def free_bytes(self):
        return self.total - self.used

    def free_all_blocks(self, stream=None):
        self.total = self.used

    def n_free_blocks(self):
        return 0

    def set_limit(self, size=None, fraction=None):
        self.limit = int(size or 0)

    def get_limit(self):
        return self.limit


_pool = _Pool()


def _root(a):
    """The array whose memory ``a`` views. NumPy's ``as_strided`` (under ``sliding_window_view``, as
    CuPy's, a view) keeps its array behind a ``DummyArray`` base: followed too."""
    while isinstance(a, np.ndarray) and a.base is not None:
        base = a.base if isinstance(a.base, np.ndarray) else getattr(a.base, "base", None)
        if not isinstance(base, np.ndarray):
            break
        a = base
    return a


def _account(a):
    """Count a new array against the pool (its hooks first); freed with its memory."""
    size = _pool._malloc(a.nbytes)
    weakref.finalize(_root(a), _pool._free, size)


def _shares_bounds(a, b):
    """CuPy's ``may_share_bounds`` (cupy/_core/_memory_range.pyx): one allocation, non-empty, and the
    byte ranges ``[first, last]`` the two arrays span intersect."""
    if _root(a) is not _root(b) or a.size == 0 or b.size == 0:
        return False

    def bounds(x):
        ends = [(n - 1) * s for n, s in zip(x.shape, x.strides)]
        start = x.__array_interface__["data"][0]
        return start + sum(min(e, 0) for e in ends), start + sum(max(e, 0) for e in ends) + x.itemsize
    (a0, a1), (b0, b1) = bounds(a), bounds(b)
    return a0 < b1 and b0 < a1


def _copy_overlapping_inputs(inputs, outs):
    """What a CuPy ufunc given outputs does first (cupy/_core/_kernel.pyx, ``_copy_in_args_if_needed``):
    an input array that is not the very object of an output but shares memory with one is copied, a
    new array from the pool (its hooks are called: gpubp's capture guard refuses it). ``a[...] = b``
    and ``copyto`` copy through the ufunc ``elementwise_copy``, ``a += b`` through ``add(a, b, a)``."""
    for x in inputs:
        if isinstance(x, ndarray) and any(isinstance(o, ndarray) and x is not o and _shares_bounds(x._a, o._a)
                                          for o in outs):
            _pool._free(_pool._malloc(x.nbytes))  # the copy, dropped once its kernel is queued


# ---------------------------------------------------------------- arrays

def _unwrap(x):
    """The NumPy array behind a fake one; a host array or a list, which CuPy refuses as an operand,
    is refused the same way."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, (np.ndarray, list, tuple)):
        raise TypeError(f"Unsupported type {type(x)}")
    return x


def _unwrap_any(x):
    """For arguments CuPy converts (indices, shapes, lists of device arrays): fake arrays unwrapped,
    the rest as it is."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap_any(v) for v in x)
    if isinstance(x, dict):
        return {k: _unwrap_any(v) for k, v in x.items()}
    return x


def _unwrap_args(args, kwargs):
    """Arguments of a CuPy function: device arrays and scalars; a host array is refused."""
    def one(x):
        if isinstance(x, np.ndarray):
            raise TypeError(f"Unsupported type {type(x)}")
        if isinstance(x, (list, tuple)):
            return type(x)(one(v) for v in x)
        return _unwrap_any(x)
    return [one(a) for a in args], {k: one(v) for k, v in kwargs.items()}


def _wrap(r, inputs=()):
    """Fake arrays for NumPy results; a new array (not a view of an input) counted against the pool."""
    if isinstance(r, np.generic):  # CuPy's reductions give 0-d arrays
        r = np.asarray(r)
    if isinstance(r, np.ndarray):
        if r.dtype == object:
            raise TypeError("Unsupported dtype object")
        roots = {id(_root(a)) for a in inputs if isinstance(a, np.ndarray)}
        if id(_root(r)) not in roots:
            _account(r)
        return ndarray._of(r)
    if isinstance(r, tuple):
        return tuple(_wrap(v, inputs) for v in r)
    if isinstance(r, list):
        return [_wrap(v, inputs) for v in r]
    return r


def _arrays_in(args, kwargs):
    found = []

    def walk(x):
        if isinstance(x, np.ndarray):
            found.append(x)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)
    for a in list(args) + list(kwargs.values()):
        walk(a)
    return found


def _call(fn, args, kwargs, writes=False, owner=None):
    """Run NumPy's ``fn`` on unwrapped arguments (and ``owner``, the array whose method it is): now,
    or recorded when a stream captures."""
    rec = _recording()
    inputs = _arrays_in(args, kwargs) + ([owner] if owner is not None else [])
    if rec is None:
        with np.errstate(all="ignore"):
            return _wrap(fn(*args, **kwargs), inputs)
    if writes:  # into arrays that exist: recorded, run at each launch
        rec.append(lambda: fn(*args, **kwargs))
        out = kwargs.get("out")
        if isinstance(out, tuple):
            out = out[0] if len(out) == 1 else out
        return _wrap(out, inputs) if out is not None else None
    with np.errstate(all="ignore"):  # a new array: its shape now, its values at each launch
        r = fn(*args, **kwargs)
    if isinstance(r, np.generic):
        r = np.asarray(r)
    if not isinstance(r, np.ndarray) or id(_root(r)) in {id(_root(a)) for a in inputs}:
        return _wrap(r, inputs)  # a view, or a non-array: nothing to run later
    fresh = np.full(r.shape, np.nan, r.dtype) if r.dtype.kind in "fc" else np.zeros(r.shape, r.dtype)
    _account(fresh)

    def later():
        with np.errstate(all="ignore"):
            np.copyto(fresh, fn(*args, **kwargs))
    rec.append(later)
    return ndarray._of(fresh)


# The keywords CuPy's ufuncs take (cupy/_core/_kernel.pyx, ufunc.__call__ pops out, _where, dtype and
# casting, then "Wrong arguments" for any other; ufunc.reduce(array, axis, dtype, out, keepdims)): NumPy's
# where=, initial=, order=, subok= pass on NumPy and are a TypeError on a GPU.
UFUNC_KEYWORDS, REDUCE_KEYWORDS = {"out", "dtype", "casting"}, {"axis", "dtype", "out", "keepdims"}


def _refuse_keywords(kwargs, allowed):
    odd = {k: v for k, v in kwargs.items() if k not in allowed}
    if odd:
        raise TypeError(f"Wrong arguments {odd}")


@functools.lru_cache(maxsize=None)
def _real_signature(owner, name):
    """The signature of CuPy's ``owner.name`` ("module": a function of ``cupy``, "ndarray": a method,
    from the first line of its docstring where Cython states it), or None where it cannot be read."""
    if REAL is None:
        return None
    obj = getattr(REAL if owner == "module" else REAL.ndarray, name, None)
    if obj is None or isinstance(obj, type):
        return None
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError):
        pass
    first = (getattr(obj, "__doc__", None) or "").strip().splitlines()[:1]
    if not first or f"{name}(" not in first[0]:
        return None
    namespace = {}
    try:
        params = first[0][first[0].index(f"{name}(") + len(name) + 1:first[0].rindex(")")]
        exec(f"def f({params}): pass", {}, namespace)
    except (SyntaxError, ValueError, NameError):
        return None
    return inspect.signature(namespace["f"])


def _bind_as_cupy(owner, name, args, kwargs):
    """CuPy's TypeError for arguments its ``name`` does not take (a keyword only NumPy knows)."""
    sig = _real_signature(owner, name)
    if sig is not None:
        try:
            sig.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"cupy{'.ndarray' if owner == 'ndarray' else ''}.{name}: {exc}") from None


def _array_method(name):
    def method(self, *args, **kwargs):
        _bind_as_cupy("ndarray", name, (self, *args), kwargs)
        args, kwargs = _unwrap_args(args, kwargs)
        return _call(getattr(self._a, name), args, kwargs, writes=kwargs.get("out") is not None, owner=self._a)
    method.__name__ = name
    return method


_wrappers = weakref.WeakValueDictionary()
_BINARY = ["add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "and", "or", "xor", "lshift", "rshift"]
_COMPARE = ["lt", "le", "gt", "ge", "eq", "ne"]


class ndarray:
    """A device array: a NumPy array behind CuPy's interface."""

    __slots__ = ("_a", "__weakref__")
    __array_priority__ = 100

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        if memptr is not None or strides is not None:
            raise FakeLimit("ndarray(memptr=..., strides=...)")
        self._a = np.empty(shape, dtype, order=order)
        _account(self._a)
        _wrappers[id(self._a)] = self

    @classmethod
    def _of(cls, a):
        """The device array of ``a``: the one already made for it (``out=`` returns ``out`` itself)."""
        known = _wrappers.get(id(a))
        if known is not None and known._a is a:
            return known
        obj = object.__new__(cls)
        obj._a = a
        _wrappers[id(a)] = obj
        return obj

    def __getattr__(self, name):
        if ARRAY_NAMES is not None and name not in ARRAY_NAMES:
            raise AttributeError(f"'cupy.ndarray' object has no attribute '{name}'")
        value = getattr(self._a, name)
        if callable(value):
            return _array_method(name).__get__(self)
        return _wrap(value, (self._a,))

    # what a device array has that a NumPy one has not, or has otherwise
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: ndarray._of(self._a.T))
    device = property(lambda self: Device(0))
    data = property(lambda self: MemoryPointer(self._a))

    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to "
                        "construct a NumPy array explicitly.")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__" and method != "reduce":
            raise FakeLimit(f"ufunc.{method}")
        _refuse_keywords(kwargs, UFUNC_KEYWORDS if method == "__call__" else REDUCE_KEYWORDS)
        ins = [_unwrap(x) for x in inputs]
        out = kwargs.get("out")
        if out is not None:
            _copy_overlapping_inputs([*inputs, kwargs.get("where")], out)
            kwargs["out"] = tuple(_unwrap(o) for o in out)
        fn = ufunc if method == "__call__" else ufunc.reduce
        return _call(fn, ins, kwargs, writes=out is not None)

    def __array_function__(self, func, types_, args, kwargs):
        name = func.__name__
        if MODULE_NAMES is not None and name not in MODULE_NAMES:
            raise TypeError(f"no implementation found for 'numpy.{name}' on cupy.ndarray")
        return getattr(sys.modules[__name__].module, name)(*args, **kwargs)

    def get(self, stream=None, order="C", out=None, blocking=True):
        _check_host_read("ndarray.get")
        if out is not None:
            np.copyto(out, self._a)
            return out
        return np.array(self._a, order=order)

    def set(self, arr, stream=None):
        check_set(self, arr)
        values = arr.copy()
        _call(np.copyto, [self._a, values], {}, writes=True)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self._a)))

    def __repr__(self):  # CuPy's is repr(self.get()) (cupy/_core/core.pyx): a host read
        return repr(self.get()).replace("array(", "fake_cupy.array(", 1)

    def __str__(self):  # str(self.get()), as CuPy's
        return str(self.get())

    def __format__(self, spec):  # CuPy's (cupy/_core/core.pyx): the host copy's format, a host read
        return format(self.get(), spec)

    def __getitem__(self, key):
        key = _unwrap_any(key)
        key = key if isinstance(key, tuple) else (key,)
        if not any(k is Ellipsis for k in key):  # an element is a 0-d view, as in CuPy (NumPy: a scalar)
            key = key + (Ellipsis,)
        return _call(self._a.__getitem__, [key], {}, owner=self._a)

    def __setitem__(self, key, value):
        if isinstance(value, np.ndarray) and value.shape != ():
            raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
        if isinstance(value, (list, tuple)):
            raise TypeError(f"Unsupported type {type(value)}")
        masks = [k for k in (key if isinstance(key, tuple) else (key,))
                 if isinstance(k, (ndarray, np.ndarray)) and k.dtype == np.bool_]
        for mask in masks:  # CuPy's _scatter_op_mask_single: a scan of the mask (a new array), then its
            _pool._free(_pool._malloc(mask.size * 4))  # count read on the host, int(mask_scanned[-1])
            _check_host_read("a[mask] = ... (CuPy reads the mask's count)")
        if isinstance(value, ndarray) and not _arrays_in([_unwrap_any(key)], {}):  # basic indexing
            view = self._a[_unwrap_any(key)]  # CuPy's _scatter_op: copied unless the very view, or a memcpy
            alike = view.shape == value.shape and view.strides == value.strides
            same = alike and view.__array_interface__["data"][0] == value._a.__array_interface__["data"][0]
            if not same and not (alike and view.flags.c_contiguous and view.dtype == value.dtype):
                _copy_overlapping_inputs([value], [ndarray._of(view)])
        value = value._a if isinstance(value, ndarray) else value
        _call(self._a.__setitem__, [_unwrap_any(key), value], {}, writes=True, owner=self._a)

    def fill(self, value):
        if isinstance(value, np.ndarray) and value.shape != ():
            raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
        _call(self._a.fill, [_unwrap(value)], {}, writes=True, owner=self._a)

    def __matmul__(self, other):
        return module.matmul(self, other)

    def __rmatmul__(self, other):
        return module.matmul(other, self)

    def __neg__(self):
        return _call(np.negative, [self._a], {})

    def __pos__(self):
        return _call(np.positive, [self._a], {})

    def __abs__(self):
        return _call(np.abs, [self._a], {})

    def __invert__(self):
        return _call(np.invert, [self._a], {})

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    def __reduce__(self):
        raise FakeLimit("pickling a device array")


def _binary(name):
    op = getattr(np.ndarray, f"__{name}__")

    def forward(self, other):  # _unwrap refuses a host array as CuPy does
        return _call(op, [self._a, _unwrap(other)], {})

    def reflected(self, other):
        return _call(getattr(np.ndarray, f"__r{name}__"), [self._a, _unwrap(other)], {})

    def inplace(self, other):
        _copy_overlapping_inputs([other], [self])
        _call(getattr(np.ndarray, f"__i{name}__"), [self._a, _unwrap(other)], {}, writes=True)
        return self
    return forward, reflected, inplace


def _host_read(name):
    """A method that reads values to the host (refused while a stream captures), as NumPy's."""
    def read(self, *args):
        _check_host_read(f"ndarray.{name}")
        return getattr(self._a, name)(*args)
    read.__name__ = name
    return read


for _name in ("item", "tolist", "__float__", "__int__", "__index__", "__bool__", "__complex__"):
    setattr(ndarray, _name, _host_read(_name))
for _name in _BINARY:
    _f, _r, _i = _binary(_name)
    setattr(ndarray, f"__{_name}__", _f)
    setattr(ndarray, f"__r{_name}__", _r)
    setattr(ndarray, f"__i{_name}__", _i)
for _name in _COMPARE:
    setattr(ndarray, f"__{_name}__", _binary(_name)[0])
ndarray.__hash__ = None


def check_set(dst, arr):
    """What ``cupy.ndarray.set`` refuses (cupy/_core/core.pyx): not a NumPy array, another dtype or
    shape, a destination that is not contiguous."""
    if not isinstance(arr, np.ndarray):
        raise TypeError("Only numpy.ndarray can be set to cupy.ndarray")
    if dst.dtype != arr.dtype:
        raise TypeError(f"{arr.dtype} array cannot be set to {dst.dtype} array")
    if dst.shape != arr.shape:
        raise ValueError(f"Shape mismatch. Old shape: {dst.shape}, new shape: {arr.shape}")
    if not (dst.flags.c_contiguous or dst.flags.f_contiguous):
        raise RuntimeError("Cannot set to non-contiguous array")


class MemoryPointer:
    def __init__(self, a):
        self.ptr = a.__array_interface__["data"][0]
        self.device_id = 0
        self.mem = types.SimpleNamespace(size=_root(a).nbytes, ptr=self.ptr)


# ---------------------------------------------------------------- kernels

def _params(spec):
    """CuPy's ``"T x, raw T y, float32 z"`` as [(type, name, raw)]."""
    out = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        words = part.split()
        out.append((words[-2], words[-1], "raw" in words[:-2]))
    return out


class ElementwiseKernel:
    """A registry kernel by its CUDA name, run by its NumPy body after CuPy's argument checks."""

    def __init__(self, in_params, out_params, operation, name="kernel", **options):
        self.ins, self.outs, self.name = _params(in_params), _params(out_params), name
        self.operation = operation

    def _kernel(self):
        from gpubp.backend import KERNELS
        for k in KERNELS.values():
            if k.cuda_name == self.name:
                return k
        raise FakeLimit(f"ElementwiseKernel {self.name!r} is not a gpubp registry kernel")

    def __call__(self, *args, size=None, block_size=None, stream=None):
        params = self.ins + self.outs
        if len(args) != len(params):
            if len(args) == len(self.ins):
                raise FakeLimit("an ElementwiseKernel whose outputs CuPy allocates")
            raise TypeError(f"Wrong number of arguments for {self.name!r}")
        loose = [pname for (_, pname, raw), a in zip(params, args) if isinstance(a, ndarray) and not raw]
        if size is not None and loose:  # cupy/_core/_kernel.pyx, _broadcast
            raise ValueError("Specified 'size' can be used only if all of the ndarray are 'raw'.")
        if size is None and not loose:
            raise ValueError("Loop size is undecided.")
        types_ = {}
        unwrapped = []
        for (ctype, pname, raw), a in zip(params, args):
            if isinstance(a, ndarray):
                if len(ctype) == 1 and ctype.isupper():
                    if ctype in types_ and types_[ctype] != a.dtype:
                        raise TypeError(f"Type is mismatched. {pname} {a.dtype} {ctype} {types_[ctype]}")
                    types_.setdefault(ctype, a.dtype)
                elif a.dtype != np.dtype(ctype):  # a declared type ("uint32 k0"): an array of exactly it
                    raise TypeError(f"Type is mismatched. {pname} {a.dtype} {ctype}")  # (_decide_params_type_core)
                unwrapped.append(a._a)
            elif isinstance(a, (np.ndarray, list, tuple)):
                raise TypeError(f"Unsupported type {type(a)}")
            else:
                unwrapped.append(a)
        kernel = self._kernel()
        for i, ((ctype, _, _), a) in enumerate(zip(params, unwrapped)):  # scalars in the kernel's type
            if not isinstance(a, np.ndarray) and ctype in types_:
                unwrapped[i] = types_[ctype].type(a)
        outs = unwrapped[len(self.ins):]

        def run():  # the kernel's formula (its NumPy body may take host scratch: not a device's way)
            values = kernel.reference(*unwrapped)
            for out, value in zip(outs, values if isinstance(values, tuple) else (values,)):
                np.copyto(out, value, casting="unsafe")
        _call(run, [], {}, writes=True)


class RawKernel:
    """gpubp's GEMM kernel (``gpubp_gemm_float`` / ``_double``) computed by NumPy as the kernel computes it:
    for every item z < gridDim.z, ``C[z] = A[z] @ B[z]`` through the pointers and element strides it is
    given, ``X[z][i, j] = X_ptr[z xz + i xs0 + j xs1]`` (item stride 0: one matrix shared by every item),
    over the rows and columns its grid's blocks cover.

    CuPy passes each argument as what it is (cupy/cuda/function.pyx ``_pointer``: an array as its
    pointer, a NumPy scalar by value in its own dtype's bytes) and cuLaunchKernel copies as many
    bytes as the kernel's parameter has: a scalar of another size than the parameter's C type is
    read wrong on a GPU, silently. The fake reads the kernel's C parameters from its source and
    refuses such an argument (TypeError), and a pointer to arrays of another dtype than the kernel's.
    A grid beyond CUDA's limits (x < 2^31, y and z <= 65535), a block of another size than the kernel's
    tile needs, and an address outside the pointed-to array's allocation are refused too (a GPU fails
    the launch, or reads and writes another array's memory)."""

    C_TYPES = {"int": np.int32, "unsigned int": np.uint32, "long long": np.int64, "unsigned long long": np.uint64,
               "float": np.float32, "double": np.float64}
    NAMES = ["A", "B", "C", "M", "N", "K", "az", "as0", "as1", "bz", "bs0", "bs1", "cz", "cs0", "cs1"]

    def __init__(self, code, name, options=(), backend="nvrtc", translate_cucomplex=False, *,
                 enable_cooperative_groups=False, jitify=False):
        if not name.startswith("gpubp_gemm_"):
            raise FakeLimit(f"RawKernel {name!r}")
        self.name, self.params, names = name, *self._parameters(code, name)
        tile = re.search(r"constexpr int BM = (\d+), BN = (\d+), BK = \d+, TM = (\d+), TN = (\d+);", code)
        if names != self.NAMES or tile is None:
            raise FakeLimit(f"RawKernel {name!r}: the fake computes parameters {self.NAMES} and a BM x BN tile, "
                            f"the source has {names}")
        bm, bn, tm, tn = map(int, tile.groups())
        self.tile, self.threads = (bm, bn), (bm // tm) * (bn // tn)

    @staticmethod
    def _parameters(code, name):
        """``[(C type, is_pointer)]`` and the names of kernel ``name``'s parameters in ``code`` (a macro's
        ``gpubp_gemm_##T`` too)."""
        ctype = name.rsplit("_", 1)[1]
        found = re.search(rf"\b{re.escape(name)}\s*\(([^)]*)\)", code) or \
            re.search(rf"\b{re.escape(name.rsplit('_', 1)[0])}_##T\s*\(([^)]*)\)", code)
        if found is None:
            raise FakeLimit(f"RawKernel {name!r}: its parameters are not found in the source")
        params, names = [], []
        for p in found.group(1).replace("\\", " ").split(","):
            words = [w for w in p.replace("*", " * ").split() if w not in ("const", "__restrict__")]
            base = " ".join(w for w in words[:-1] if w != "*")  # the type less const, __restrict__ and *
            params.append((ctype if base == "T" else base, "*" in words))
            names.append(words[-1])
        return params, names

    def __call__(self, grid, block, args, *, shared_mem=0, enable_cooperative_groups=False):
        if len(args) != len(self.params):
            raise TypeError(f"{self.name} takes {len(self.params)} arguments, got {len(args)}")
        for i, ((ctype, pointer), x) in enumerate(zip(self.params, args)):
            want = self.C_TYPES[ctype]
            if pointer and not (isinstance(x, ndarray) and x.dtype == want):
                raise TypeError(f"{self.name} argument {i}: a {ctype}* takes a device array of {np.dtype(want)}, "
                                f"got {type(x).__name__} {getattr(x, 'dtype', '')}")
            if not pointer and not (isinstance(x, np.generic) and x.dtype == want):
                raise TypeError(f"{self.name} argument {i}: a {ctype} takes a NumPy {np.dtype(want)} scalar (CuPy "
                                f"copies the argument's own bytes), got {type(x).__name__} {getattr(x, 'dtype', '')}")
        gx, gy, gz = self._dims("grid", grid)
        if not (gx < 2**31 and gy <= 65535 and gz <= 65535) or self._dims("block", block) != (self.threads, 1, 1):
            raise RuntimeError(f"CUDA_ERROR_INVALID_VALUE: {self.name} launched with grid {grid}, block {block} "
                               f"(grid x < 2^31, y and z <= 65535; its tile takes a block of {self.threads})")
        a, b, out, m, n, k = args[:6]
        rows, cols = min(int(m), gy * self.tile[0]), min(int(n), gx * self.tile[1])  # what the blocks cover
        A, B, C = (self._matrices(x, (gz, *shape), args[i:i + 3]) for x, shape, i in
                   ((a, (rows, int(k)), 6), (b, (int(k), cols), 9), (out, (rows, cols), 12)))
        _call(np.matmul, [A, B], {"out": C}, writes=True)

    @staticmethod
    def _dims(what, dims):
        """A launch's grid or block as CuPy takes it (a tuple of 1 to 3 positive ints) and CUDA reads it: (x, y, z)."""
        if not (isinstance(dims, tuple) and 1 <= len(dims) <= 3 and
                all(isinstance(d, (int, np.integer)) and d > 0 for d in dims)):
            raise RuntimeError(f"CUDA_ERROR_INVALID_VALUE: a {what} of {dims!r}")
        return tuple(int(d) for d in dims) + (1,) * (3 - len(dims))

    def _matrices(self, x, shape, strides):
        """What the kernel addresses through pointer ``x`` at ``x_ptr[z sz + i s0 + j s1]`` for ``(z, i, j)``
        below ``shape``, element ``strides`` ``(sz, s0, s1)``: a NumPy view; refused where it reaches outside
        ``x``'s allocation (on a GPU an illegal address, or another array's memory)."""
        a, root = x._a, _root(x._a)
        view = np.lib.stride_tricks.as_strided(a, shape, [int(s) * a.itemsize for s in strides], writeable=True)
        if view.size:
            ends = [(d - 1) * s for d, s in zip(view.shape, view.strides)]
            start, low = root.__array_interface__["data"][0], a.__array_interface__["data"][0]
            if low + sum(min(e, 0) for e in ends) < start or \
                    low + sum(max(e, 0) for e in ends) + a.itemsize > start + root.nbytes:
                raise RuntimeError(f"cudaErrorIllegalAddress: {self.name} addresses {shape} elements at strides "
                                   f"{tuple(int(s) for s in strides)} beyond an array of {root.nbytes} bytes")
        return view


# ---------------------------------------------------------------- cuda: devices, streams, events, graphs

def _hooks():
    if not hasattr(_state, "hooks"):
        _state.hooks = {}
    return _state.hooks


class MemoryHook:
    name = "MemoryHook"

    def __enter__(self):
        if self.name in _hooks():
            raise RuntimeError(f"memory hook {self.name!r} already exists")
        _hooks()[self.name] = self
        return self

    def __exit__(self, *exc):
        _hooks().pop(self.name, None)

    def alloc_preprocess(self, **kwargs):
        pass

    def alloc_postprocess(self, **kwargs):
        pass

    def malloc_preprocess(self, **kwargs):
        pass

    def malloc_postprocess(self, **kwargs):
        pass

    def free_preprocess(self, **kwargs):
        pass

    def free_postprocess(self, **kwargs):
        pass


class Device:
    def __init__(self, device=None):
        self.id = 0 if device is None else int(device)
        if self.id != 0:
            raise cuda.runtime.CUDARuntimeError(f"cudaErrorInvalidDevice: invalid device ordinal {self.id}")
        self.compute_capability = "90"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def synchronize(self):
        _check_host_read("Device.synchronize")

    def use(self):
        pass

    @property
    def mem_info(self):
        return MEMORY - _pool.used, MEMORY

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return hash(self.id)


class Graph:
    def __init__(self, ops):
        self._ops = ops

    def launch(self, stream=None):
        _check_host_read("Graph.launch inside another capture")
        with np.errstate(all="ignore"):
            for op in self._ops:
                op()

    def upload(self, stream=None):
        pass


class Event:
    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self.time = None

    def record(self, stream=None):
        self.time = time.perf_counter()

    def synchronize(self):
        _check_host_read("Event.synchronize")

    @property
    def done(self):
        return True


class Stream:
    null = None

    def __init__(self, null=False, non_blocking=False, ptds=False, priority=None):
        self.ptr = 0 if null else id(self)
        self._capturing = False

    def __enter__(self):
        stack = getattr(_state, "streams", None)
        if stack is None:
            stack = _state.streams = []
        stack.append(self)
        return self

    def __exit__(self, *exc):
        _state.streams.pop()

    def use(self):
        return self

    def synchronize(self):
        _check_host_read("Stream.synchronize")

    def record(self, event=None):
        event = event or Event()
        event.record(self)
        return event

    def wait_event(self, event):
        pass

    def begin_capture(self, mode=None):
        if _recording() is not None:
            raise CaptureError("cudaErrorIllegalState: a capture is in progress")
        if get_current_stream() is not self:
            raise FakeLimit("capturing a stream that is not the current one")
        _state.recording, self._capturing = [], True

    def end_capture(self):
        if not self._capturing:
            raise CaptureError("cudaErrorIllegalState: this stream does not capture")
        ops, _state.recording, self._capturing = _state.recording, None, False
        return Graph(ops)

    def is_capturing(self):
        return self._capturing


def get_current_stream(device_id=None):
    stack = getattr(_state, "streams", None)
    return stack[-1] if stack else Stream.null


def get_elapsed_time(start, end):
    return (end.time - start.time) * 1e3


# ---------------------------------------------------------------- the module

WRITE_FIRST = {"copyto", "put", "place", "putmask", "fill_diagonal"}  # CuPy functions writing into their first argument


def _copyto_copies(dst, src, where=None, **kwargs):
    """``cupy.copyto`` (cupy/_manipulation/basic.py): a memcpy where both are C- (or F-) contiguous
    of one dtype and size, else the ufunc ``elementwise_copy``, which copies an overlapping ``src``."""
    if not isinstance(dst, ndarray) or not isinstance(src, ndarray) or src.ndim == 0:
        return
    memcpy = ((dst.flags.c_contiguous and src.flags.c_contiguous) or (dst.flags.f_contiguous and src.flags.f_contiguous)) \
        and dst.dtype == src.dtype and dst.size == src.size
    if where is not None or not memcpy:
        _copy_overlapping_inputs([src, where], [dst])


def _module_function(name, fn):
    def f(*args, **kwargs):
        if isinstance(fn, np.ufunc):
            _refuse_keywords(kwargs, UFUNC_KEYWORDS)
        else:
            _bind_as_cupy("module", name, args, kwargs)
        if name == "copyto":
            _copyto_copies(*args, **kwargs)
        elif isinstance(fn, np.ufunc) or name == "clip":  # clip is CuPy's ufunc _clip too
            nin = fn.nin if isinstance(fn, np.ufunc) else 3
            out = kwargs.get("out", args[nin:])
            _copy_overlapping_inputs([*args[:nin], kwargs.get("where")], out if isinstance(out, tuple) else (out,))
        args, kwargs = _unwrap_args(args, kwargs)
        return _call(fn, args, kwargs, writes=kwargs.get("out") is not None or name in WRITE_FIRST)
    f.__name__ = name
    return f


def asarray(a, dtype=None, order=None, *, blocking=False):
    if isinstance(a, ndarray):
        return a if dtype is None or np.dtype(dtype) == a.dtype else a.astype(dtype)
    return array(a, dtype=dtype, order=order or "K")


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    if isinstance(obj, ndarray):
        return _call(np.array, [obj._a], dict(dtype=dtype, copy=True, order=order, ndmin=ndmin))
    host = np.array(obj, dtype=dtype, copy=True, order=order, ndmin=ndmin)
    if host.dtype == object:
        raise ValueError("Unsupported dtype object")
    _account(host)
    return ndarray._of(host)


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    if isinstance(a, ndarray):
        return a.get(order=order, out=out)
    return np.asarray(a, order=order)


class Crash(BaseException):
    """What ends the process on a GPU (a segmentation fault there): no error a caller could catch."""


def matmul(a, b, out=None, **kwargs):
    if out is None and (a is None or b is None):  # _try_fastcall_matmul passes None on to _core.matmul
        raise Crash("CuPy 14.2's matmul ends the process on a None operand (a segmentation fault, seen on an H200)")
    if _recording() is not None:  # CuPy: cuBLAS is not allowed while a stream captures
        raise NotImplementedError("cuBLAS operations are not allowed during stream capture")
    for x in (a, b):
        if not isinstance(x, ndarray):
            raise TypeError(f"Unsupported type {type(x)}")
    return _call(np.matmul, [a._a, b._a], {"out": _unwrap(out)} if out is not None else {},
                 writes=out is not None)


def sliding_window_view(x, window_shape, axis=None, *, subok=False, writeable=False):
    """CuPy's (cupy/lib/stride_tricks.py) copies ``window_shape`` to the device first: an allocation."""
    _pool._free(_pool._malloc(np.size(window_shape) * 8))
    return _call(np.lib.stride_tricks.sliding_window_view, [_unwrap(x), window_shape],
                 {"axis": axis, "subok": subok, "writeable": writeable})


def take(a, indices, axis=None, out=None):
    """CuPy converts host indices (cupy/_core/_routines_indexing.pyx, _take); ``a`` and ``out`` are the device's."""
    for x in (a,) if out is None else (a, out):
        if not isinstance(x, ndarray):
            raise TypeError(f"Unsupported type {type(x)}")
    indices = indices._a if isinstance(indices, ndarray) else np.asarray(indices)
    return _call(np.take, [a._a, indices], {"axis": axis, **({"out": out._a} if out is not None else {})},
                 writes=out is not None)


def get_array_module(*args):
    return module if any(isinstance(a, ndarray) for a in args) else np


def _accelerators():
    saved = {kind: [] for kind in ("routine", "reduction", "elementwise")}
    m = types.ModuleType("cupy._core._accelerator")
    for kind in saved:
        m.__dict__[f"get_{kind}_accelerators"] = lambda kind=kind: list(saved[kind])
        m.__dict__[f"set_{kind}_accelerators"] = lambda names, kind=kind: saved.__setitem__(kind, list(names))
    return m


class _Module(types.ModuleType):
    """``cupy`` or one of its submodules: NumPy's functions of the same names on device arrays."""

    def __init__(self, name, host, real):
        super().__init__(name)
        self._host, self._real = host, real
        self._names = None if real is None else set(dir(real))

    def __getattr__(self, name):
        if name.startswith("__") or name in ("_host", "_names", "_real"):
            raise AttributeError(name)
        if self._names is not None and name not in self._names:
            raise AttributeError(f"module '{self.__name__}' has no attribute '{name}'")
        value = getattr(self._host, name, None)
        if value is None:
            raise FakeLimit(f"{self.__name__}.{name}")
        if isinstance(value, types.ModuleType):  # np.lib, np.linalg: a submodule of the same kind
            sub = _Module(f"{self.__name__}.{name}", value, getattr(self._real, name, None))
            setattr(self, name, sub)
            return sub
        if isinstance(value, type) or not callable(value):
            return value  # dtypes (cupy.float32), constants
        f = _module_function(name, value)
        setattr(self, name, f)
        return f


module = _Module("cupy", np, REAL)
module.__version__ = "14.2.0+fake"
module.ndarray = ndarray
module.asarray, module.array, module.asnumpy, module.matmul, module.take = asarray, array, asnumpy, matmul, take
module.lib.stride_tricks.sliding_window_view = sliding_window_view
module.get_array_module = get_array_module
module.ElementwiseKernel, module.RawKernel = ElementwiseKernel, RawKernel
module.get_default_memory_pool = lambda: _pool
module.get_default_pinned_memory_pool = lambda: _Pool()
module.is_available = lambda: True


MEMORY = 140 * 2**30  # an H200's


def _fits(shape, dtype):
    """CuPy's pool refuses what the device cannot hold (before NumPy would try)."""
    n = int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize if np.ndim(shape) else int(shape) * np.dtype(dtype).itemsize
    if n > MEMORY - _pool.used:
        raise OutOfMemoryError(n, _pool.used)


def zeros(shape, dtype=float, order="C"):
    _fits(shape, dtype)
    a = np.zeros(shape, dtype, order=order)
    _account(a)
    if _recording() is not None:  # a memset recorded too
        _recording().append(lambda: a.fill(0))
    return ndarray._of(a)


def empty(shape, dtype=float, order="C"):
    _fits(shape, dtype)
    a = np.full(shape, np.nan, dtype, order=order) if np.dtype(dtype).kind in "fc" else np.zeros(shape, dtype, order=order)
    _account(a)
    return ndarray._of(a)


module.zeros, module.empty = zeros, empty

cuda = types.ModuleType("cupy.cuda")
cuda.Device, cuda.Stream, cuda.Event, cuda.MemoryHook = Device, Stream, Event, MemoryHook
cuda.get_current_stream, cuda.get_elapsed_time = get_current_stream, get_elapsed_time
cuda.is_available = lambda: True
Stream.null = Stream(null=True)

cuda.runtime = types.ModuleType("cupy.cuda.runtime")


class CUDARuntimeError(RuntimeError):
    pass


cuda.runtime.CUDARuntimeError = CUDARuntimeError
cuda.runtime.getDeviceCount = lambda: 1
cuda.runtime.getDevice = lambda: 0
cuda.runtime.setDevice = lambda i: None
cuda.runtime.driverGetVersion = lambda: 13000
cuda.runtime.runtimeGetVersion = lambda: 13000
cuda.runtime.getDeviceProperties = lambda i: {"name": b"Fake GPU (NumPy behind CuPy's API)", "major": 9,
                                              "minor": 0, "totalGlobalMem": 140 * 2**30}

cuda.memory = types.ModuleType("cupy.cuda.memory")


class OutOfMemoryError(MemoryError):
    def __init__(self, size, total, limit=0):
        super().__init__(f"Out of memory allocating {size:,} bytes (allocated so far: {total:,} bytes"
                         + (f", limit set to: {limit:,} bytes" if limit else "") + ").")


cuda.memory.OutOfMemoryError = OutOfMemoryError
cuda.memory.MemoryPool = _Pool
cuda.memory_hook = types.ModuleType("cupy.cuda.memory_hook")
cuda.memory_hook.MemoryHook = MemoryHook
cuda.memory_hook.get_memory_hooks = lambda: dict(_hooks())
cuda.graph = types.ModuleType("cupy.cuda.graph")
cuda.graph.Graph = Graph


class NcclCommunicator:
    """NCCL of one rank (a sum over one rank leaves a buffer as it is): the NCCL transport's calls,
    their arguments checked as CuPy's binding takes them (device pointers and counts as ints)."""

    def __init__(self, ndev, commId, rank, config=None):
        # CuPy 14 (cupy_backends/cuda/libs/nccl.pyx, NcclCommunicator.__init__(int ndev, bytes commId,
        # int rank, ...)): the id is bytes of NCCL_UNIQUE_ID_BYTES (a tuple of ints before 14.0)
        if not isinstance(commId, bytes):
            raise TypeError(f"Argument 'commId' has incorrect type (expected bytes, got {type(commId).__name__})")
        if len(commId) != 128:
            raise ValueError(f"commId length {len(commId)} != 128.")
        if ndev != 1:
            raise FakeLimit(f"NCCL across {ndev} ranks")
        if rank != 0:
            raise RuntimeError(f"NCCL_ERROR_INVALID_ARGUMENT: rank {rank} of 1")
        self._open = True

    def _check(self, *ints):
        if not self._open:
            raise RuntimeError("NCCL_ERROR_INVALID_ARGUMENT: the communicator was destroyed")
        for x in ints:
            if not isinstance(x, (int, np.integer)):
                raise TypeError(f"an NCCL argument must be an int (a pointer, count or enum), got {type(x).__name__}")

    def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):
        self._check(sendbuf, recvbuf, count, datatype, op, stream)
        if sendbuf != recvbuf:
            raise FakeLimit("an NCCL all-reduce into another buffer")

    def bcast(self, buff, count, datatype, root, stream):
        self._check(buff, count, datatype, root, stream)

    def destroy(self):
        self._open = False


cuda.nccl = types.ModuleType("cupy.cuda.nccl")
cuda.nccl.available = True
cuda.nccl.get_unique_id = lambda: bytes(range(128))  # bytes since CuPy 14.0 (nccl.pyx get_unique_id)
cuda.nccl.NcclCommunicator = NcclCommunicator
cuda.nccl.NCCL_SUM, cuda.nccl.NCCL_FLOAT32, cuda.nccl.NCCL_FLOAT64 = 0, 7, 8
if REAL is not None:  # NVRTC needs no GPU: CuPy's own compiler, as on a GPU machine (and what it reads)
    cuda.nvrtc, cuda.compiler = REAL.cuda.nvrtc, REAL.cuda.compiler
    module._environment = REAL._environment
else:
    cuda.nvrtc = types.ModuleType("cupy.cuda.nvrtc")
    cuda.nvrtc.getVersion = lambda: (13, 0)
module.cuda = cuda

_core = types.ModuleType("cupy._core")
_core._accelerator = _accelerators()
module._core = _core

SUBMODULES = {"cupy": module, "cupy.cuda": cuda, "cupy.cuda.runtime": cuda.runtime, "cupy.cuda.memory": cuda.memory,
              "cupy.cuda.memory_hook": cuda.memory_hook, "cupy.cuda.graph": cuda.graph, "cupy.cuda.nccl": cuda.nccl,
              "cupy.cuda.nvrtc": cuda.nvrtc, **({"cupy.cuda.compiler": cuda.compiler} if REAL else {}), "cupy._core": _core, "cupy._core._accelerator": _core._accelerator}


def install():
    """Put this fake where ``import cupy`` finds it (before gpubp is imported)."""
    if "gpubp" in sys.modules:
        raise RuntimeError("install the fake CuPy before gpubp is imported")
    for name in [n for n in sys.modules if n == "cupy" or n.startswith(("cupy.", "cupyx"))]:
        del sys.modules[name]
    sys.modules.update(SUBMODULES)
