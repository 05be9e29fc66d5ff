"""How close a kernel is to the exact value of its formula, in ulps, and its CUDA body
run on the CPU (compiled as host C++ by g++). Used by test_kernel_ulps.py.

Truth: the kernel's ``reference`` evaluated in ``np.longdouble`` (80-bit on x86, so
11 bits beyond float64) on the same array inputs (exact in the kernel's dtype) and on
the *float64* scalars the host derives (``1 - beta`` before it is rounded to the
kernel's dtype), so rounding a hyperparameter scalar counts against the kernel.

Error unit: the spacing of the dtype at ``|exact|`` for activations. An update
(a kernel writing its outputs in place) is judged as numerical analysis judges a sum,
at ``max(|exact|, |old|, S)`` where ``old`` is the value before the step and
``S = sum_i |x_i df/dx_i|`` over every input, scalar and old state ``x_i``: the
change one relative unit in each input makes. So a cancellation no float
implementation avoids (``mu buf + g`` when they nearly cancel, ``sq - avg^2`` in a
centred RMSprop) does not count, while an extra rounding, a lost term or a scalar
rounded from a rounded hyperparameter (``1 - beta2`` from float32 ``beta2``) does.
Never below the smallest normal number: a result that flushes to zero from the
subnormal range counts as less than one unit (CUDA's ``-ftz`` and NumPy's
overflowing ``exp`` both do).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess

import numpy as np

from gpubp.backend.kernels import HOST_PRELUDE, host_source

NONNEGATIVE_STATE = {"sq", "v", "vmax"}  # averages of squares


def value_pool(dtype, rng, n=600):
    """Array values from ordinary to extreme: uniform in [-3, 3], magnitudes 1e-30 .. 1e4
    on a log scale, and fixed extremes (zeros, subnormals, smallest normal, |x| = 1e4, 1e10)."""
    info = np.finfo(dtype)
    sub = info.smallest_subnormal
    fixed = np.array([0.0, -0.0, sub, -sub, 7 * sub, -1000 * sub, float(info.tiny), -float(info.tiny),
                      1e-8, -1e-8, 1.0, -1.0, 88.0, -88.0, 89.0, -89.0, 100.0, -100.0, 710.0, -710.0,
                      1e3, -1e3, 1e4, -1e4, 1e10, -1e10], dtype=dtype)
    logs = 10.0 ** rng.uniform(-30, 4, n // 2) * rng.choice([-1.0, 1.0], n // 2)
    pool = np.concatenate([fixed, rng.uniform(-3, 3, n - n // 2), logs]).astype(dtype)
    return pool


def extreme_arguments(kernel, dtype, rng, example=0):
    """(array inputs and outputs in ``dtype``, scalars as float64) drawn from ``value_pool``;
    state that is an average of squares is >= 0, ``kernel.prepare`` makes the rest consistent."""
    dtype = np.dtype(dtype)
    pool = value_pool(dtype, rng)
    scalars = iter(kernel.examples[example] if kernel.examples else ())
    ins = [kernel.scalar_dtype(name, np.float64).type(next(scalars)) if name in kernel.scalars else rng.permutation(pool)
           for name in kernel.input_names]
    outs = [np.abs(rng.permutation(pool)) if name in NONNEGATIVE_STATE else rng.permutation(pool)
            for name in kernel.output_names]
    if kernel.prepare is not None:
        kernel.prepare(ins, outs)
    return ins, outs


def rounded(ins, kernel, dtype):
    """The inputs as a launch sees them: scalars rounded once to ``dtype`` (or in their declared type)."""
    return [kernel.scalar_dtype(name, dtype).type(a) if name in kernel.scalars else a
            for name, a in zip(kernel.input_names, ins)]


def exact_outputs(kernel, ins, outs):
    """The reference formula in long double on the float64 scalars."""
    wide = [np.longdouble(a) if np.ndim(a) == 0 else a.astype(np.longdouble) for a in ins]
    with np.errstate(all="ignore"):
        want = kernel.reference(*wide, *[o.astype(np.longdouble) for o in outs])
    want = want if isinstance(want, tuple) else (want,)
    n = len(outs[0])
    return [np.broadcast_to(w, (n,)) for w in want]


def sensitivity(kernel, ins, outs):
    """Per output, ``S = sum_i |x_i df/dx_i|`` by central differences in long double."""
    args = [np.longdouble(a) if np.ndim(a) == 0 else a.astype(np.longdouble) for a in (*ins, *outs)]
    h = np.longdouble(1e-7)
    total = [np.zeros(len(outs[0]), dtype=np.longdouble) for _ in outs]
    for i, x in enumerate(args):
        if not np.any(x):
            continue
        ends = []
        for sign in (1, -1):
            moved = list(args)
            moved[i] = x * (1 + sign * h)
            with np.errstate(all="ignore"):
                f = kernel.reference(*moved)
            ends.append(f if isinstance(f, tuple) else (f,))
        for k, (fp, fm) in enumerate(zip(*ends)):
            total[k] += np.abs(np.broadcast_to(fp - fm, total[k].shape)) / (2 * h)
    return total


def ulp_errors(kernel, dtype, got, exact, ins, old) -> dict:
    """{output name: ulp error per element} (inf where a finite truth came back non-finite)."""
    dtype = np.dtype(dtype)
    errors = {}
    update = any(kernel.reads(name) for name in kernel.output_names)
    sens = sensitivity(kernel, ins, old) if update else [0] * len(old)
    for name, have, want, before, s in zip(kernel.output_names, got, exact, old, sens):
        scale = np.abs(want)
        if update:
            scale = np.maximum(np.maximum(scale, np.abs(before.astype(np.longdouble))), s)
        with np.errstate(over="ignore"):
            unit = np.maximum(np.spacing(scale.astype(dtype)), np.finfo(dtype).tiny).astype(np.longdouble)
        with np.errstate(over="ignore"):  # a wildly wrong result is more ulps than a float64 holds
            err = np.abs(have.astype(np.longdouble) - want) / unit
            errors[name] = np.where(np.isfinite(have), err, np.inf).astype(np.float64)
    return errors


def worst(errors: dict):
    """(largest error, output name, element index)."""
    name = max(errors, key=lambda k: errors[k].max())
    return float(errors[name].max()), name, int(errors[name].argmax())


# -- CUDA bodies on the host -------------------------------------------------------

def compiler():
    """A C++ compiler: $CXX, else g++, else c++ (None when there is none)."""
    for cand in (os.environ.get("CXX"), "g++", "c++"):
        if cand and shutil.which(cand):
            return shutil.which(cand)
    return None


CTYPES = {"uint32": ctypes.c_uint32, "uint64": ctypes.c_uint64, "int32": ctypes.c_int32, "int64": ctypes.c_int64}
FLAGS = ["-std=c++17", "-O2", "-shared", "-fPIC", "-Wall", "-Wdouble-promotion", "-Wfloat-conversion", "-Werror"]


class HostBuild:
    """Compiles CUDA bodies as host C++ shared libraries in ``workdir``, once per source."""

    def __init__(self, workdir):
        self.workdir, self.cxx, self._libs = str(workdir), compiler(), {}

    def library(self, kernel):
        """The ctypes library with ``<cuda_name>_float`` and ``_double``; AssertionError
        with the compiler's log when the body does not compile (or computes in double)."""
        source = HOST_PRELUDE + "\n".join(host_source(kernel, ct) for ct in ("float", "double")) + "\n"
        key = hashlib.sha256(source.encode()).hexdigest()[:16]
        if key not in self._libs:
            cpp = os.path.join(self.workdir, f"{kernel.name}_{key}.cpp")
            lib = cpp[:-4] + ".so"
            with open(cpp, "w") as f:
                f.write(source)
            done = subprocess.run([self.cxx, *FLAGS, cpp, "-o", lib], capture_output=True, text=True)
            if done.returncode:
                raise AssertionError(f"the CUDA body of {kernel.name} does not compile as host C++:\n"
                                     f"{done.stderr}\n--- source ---\n{source}")
            self._libs[key] = ctypes.CDLL(lib)
        return self._libs[key]

    def run(self, kernel, dtype, ins, outs):
        """Run the body over every element, writing ``outs`` in place (as the GPU would)."""
        dtype = np.dtype(dtype)
        ctype = "float" if dtype == np.float32 else "double"
        scalar = ctypes.c_float if ctype == "float" else ctypes.c_double
        fn = getattr(self.library(kernel), f"{kernel.cuda_name}_{ctype}")
        fn.restype = None
        typed = {name: CTYPES.get(kernel.types[name], scalar) for name in kernel.scalars}  # uint32 k0 ...
        fn.argtypes = [typed[name] if name in kernel.scalars else ctypes.c_void_p for name in kernel.input_names]
        fn.argtypes += [ctypes.c_void_p] * len(outs) + [ctypes.c_longlong]
        assert all(o.dtype == dtype and o.flags.c_contiguous for o in outs)
        arrays = {name: np.ascontiguousarray(a, dtype=dtype) for name, a in zip(kernel.input_names, ins)
                  if name not in kernel.scalars}  # held until the call returns
        args = [typed[name](a.item() if hasattr(a, "item") else a) if name in kernel.scalars else arrays[name].ctypes.data
                for name, a in zip(kernel.input_names, ins)]
        fn(*args, *[o.ctypes.data for o in outs], len(outs[0]))
