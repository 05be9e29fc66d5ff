"""The kernel record and its registry: each custom elementwise kernel declared once.

A :class:`Kernel` carries (a) its CUDA body, compiled by CuPy as an
``ElementwiseKernel`` on a GPU, (b) its NumPy fast path, which writes into
the output arrays in place, and (c) a plain NumPy reference formula used by
the tests. ``KERNELS`` is iterable, so tests cover every kernel automatically:
:func:`cuda_source` turns a kernel into a standalone CUDA translation unit that
NVRTC can compile on a machine without a GPU, and :func:`host_source` turns the
same body into host C++ that a CPU runs, so the tests hold the CUDA body to the
kernel's ulp budget (``Kernel.ulps``) without a GPU.

Two extensions, both in CuPy's own terms: a scalar input may be declared with a type other
than ``T`` (``"uint32 k0"``: integer words such as a mask's key, which a float cannot carry
exactly), and an ``indexed`` kernel's body reads ``i``, the element's flat index in C order
(CuPy's ElementwiseKernel defines it; the NumPy backend passes each block's first index as
``start``). Every other argument is a ``T`` array of one shape.

Scalars that are functions of hyperparameters (``1 - beta``, ``lr / (1 - beta1^t)``,
``1 - lr * wd``) are computed by the caller on the host in float64 and passed as
their own scalar inputs, so each is rounded once: a body never subtracts nearly
equal float32 numbers, and never mixes in a double literal (write ``(T)1`` or
the integer ``1``, never ``1.0``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np

from ...errors import InvalidValueError


class Registry(dict):
    """``{name: Kernel}``; an unknown name is an InvalidValueError listing the known ones."""

    def __missing__(self, name):
        raise InvalidValueError(f"no kernel named {name!r}; the registry has {', '.join(sorted(self))}")


KERNELS: dict[str, "Kernel"] = Registry()


@dataclass(frozen=True)
class Kernel:
    """One elementwise kernel.

    ``inputs``/``outputs`` use CuPy's ``ElementwiseKernel`` syntax (``"T z"``).
    Output names may also be read in ``cuda`` (in-place updates), exactly as
    CuPy allows. ``numpy(*inputs, *outputs)`` must fill the outputs in place;
    ``reference(*inputs, *outputs)`` returns the new output value(s) as plain
    NumPy expressions (a tuple when there are several outputs). Inputs named in
    ``scalars`` are hyperparameters passed as numbers; all other arguments are arrays.

    ``ulps`` is the accuracy budget: the largest error allowed, in units in the last
    place (float32, float64), of the NumPy path and of the CUDA body run on the host,
    against ``reference`` evaluated in long double (see ``ulp_errors`` in tests/backend/kernel_truth.py). ``examples``
    are realistic float64 values of the scalars (tuples in ``scalars`` order) for
    tests, self-test and benchmarks; ``prepare(ins, outs)`` makes sampled state
    consistent (e.g. a centred RMSprop's ``avg^2 <= sq``) in place.

    ``indexed``: the body reads ``i``, the element's flat index in C order (CuPy's
    ElementwiseKernel's special variable); the NumPy path then takes keyword ``start``, the index
    of its first element (the backend launches large arrays in blocks), and ``reference``
    computes over the whole array from index 0. A scalar declared with another type than ``T``
    (``"uint32 k0"``) is passed in that type (``scalar_dtype``).

    ``scratch``: how many scratch arrays of its arguments' size and dtype the NumPy path takes
    at most (``scratch.scratch``; one block's size where the backend runs it in blocks).

    ``overflows``: the NumPy path may overflow where its result is still right (the sigmoid's
    ``exp(-z) = inf`` gives ``s = 0``) and leaves NumPy's warning to whoever runs it: an eager
    launch runs it under ``np.errstate(over="ignore")``, a bound one under its caller's (a step
    plan holds one for its whole step), so a plan's step does not pay for one per layer.
    """

    name: str
    inputs: str
    outputs: str
    cuda: str
    numpy: Callable
    reference: Callable
    formula: str = ""  # the math in one line, shown in reports
    scalars: tuple = ()  # input names that are scalars (hyperparameters), not arrays
    ulps: tuple = (4, 4)  # accuracy budget in ulps for (float32, float64)
    examples: tuple = ()  # realistic scalar values, each a tuple in `scalars` order
    prepare: Callable | None = None  # prepare(ins, outs): make sampled state consistent
    overflows: bool = False  # the NumPy path's expected overflow is silenced by its caller
    indexed: bool = False  # the body reads i, the element index; the NumPy path takes start=
    scratch: int = 0  # scratch arrays of the arguments' size and dtype its NumPy path takes, at most

    def ulp_budget(self, dtype) -> float:
        return self.ulps[0] if np.dtype(dtype) == np.float32 else self.ulps[1]

    @cached_property
    def input_names(self) -> list[str]:
        return _names(self.inputs)

    @cached_property
    def output_names(self) -> list[str]:
        return _names(self.outputs)

    @cached_property
    def types(self) -> dict[str, str]:
        """``{name: type}`` of every argument as declared: "T", or a NumPy dtype name ("uint32")."""
        return {p.split()[-1]: p.split()[-2] for p in f"{self.inputs},{self.outputs}".split(",") if p.strip()}

    def reads(self, output) -> bool:
        """Whether the body reads ``output``'s old value (``param -= ...``, ``buf = momentum * buf``)
        rather than only assigning it (``s = ...``)."""
        return re.search(rf"\b{output}\b", re.sub(rf"\b{output}\s*=(?!=)", "", self.cuda)) is not None

    def scalar_dtype(self, name, dtype) -> np.dtype:
        """The dtype scalar ``name`` is passed in: ``dtype`` (the arrays') for a ``T``, else its declared type."""
        declared = self.types[name]
        return np.dtype(dtype) if declared == "T" else np.dtype(declared)

    def ctype(self, name, ctype) -> str:
        """The C type of argument ``name`` when ``T`` is ``ctype``."""
        declared = self.types[name]
        return ctype if declared == "T" else C_TYPES[declared]

    @cached_property
    def scalar_positions(self) -> tuple[int, ...]:
        """Argument positions of the ``scalars`` (inputs come first, then outputs)."""
        return tuple(i for i, name in enumerate(self.input_names) if name in self.scalars)

    @property
    def cuda_name(self) -> str:
        return f"gpubp_{self.name}"


def register(kernel: Kernel) -> Kernel:
    if kernel.name in KERNELS:
        raise ValueError(f"kernel {kernel.name!r} is registered twice")
    if kernel.input_names[0] in kernel.scalars:  # backends size a launch by its first argument
        raise ValueError(f"kernel {kernel.name!r}: the first input must be an array, not a scalar")
    if list(kernel.scalars) != [n for n in kernel.input_names if n in kernel.scalars]:
        raise ValueError(f"kernel {kernel.name!r}: scalars {kernel.scalars} must be inputs, in input order")
    typed = [n for n, t in kernel.types.items() if t != "T"]
    if set(typed) - set(kernel.scalars) or {kernel.types[n] for n in typed} - set(C_TYPES):
        raise ValueError(f"kernel {kernel.name!r}: only scalars may have a type other than T, one of "
                         f"{', '.join(C_TYPES)}; got {', '.join(f'{kernel.types[n]} {n}' for n in typed)}")
    KERNELS[kernel.name] = kernel
    return kernel


C_TYPES = {"uint32": "unsigned int", "uint64": "unsigned long long", "int32": "int", "int64": "long long"}


def _names(params: str) -> list[str]:
    return [p.split()[-1] for p in params.split(",") if p.strip()]


def cuda_source(kernel: Kernel, ctype: str) -> str:
    """A standalone ``__global__`` function running ``kernel.cuda`` with ``T = ctype``.

    It binds the parameters the way CuPy's ElementwiseKernel does (``const T x``
    for inputs, scalars by value in their declared type, ``T& y`` for outputs, ``i`` the
    element's index), so a body that compiles here compiles inside CuPy too. Used by the
    NVRTC compile check; needs no GPU.
    """
    ins, outs, scalars = kernel.input_names, kernel.output_names, kernel.scalars
    params = [f"const {kernel.ctype(n, ctype)} {n}" if n in scalars else f"const {ctype}* __restrict__ {n}_"
              for n in ins] + [f"{ctype}* {n}_" for n in outs]
    binds = [f"const T {n} = {n}_[i];" for n in ins if n not in scalars] + [f"T& {n} = {n}_[i];" for n in outs]
    return "\n".join([
        f'extern "C" __global__ void {kernel.cuda_name}_{ctype}({", ".join(params)}, const long long n) {{',
        "    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;",
        "    if (i >= n) return;",
        f"    typedef {ctype} T;",
        *("    " + b for b in binds),
        f"    {kernel.cuda};",
        "}",
    ])


# What a CUDA body may call, mapped to <cmath>: the float overloads of exp, tanh,
# sqrt ... are std's, as CUDA's are. std::max/min take one type only, so a double
# literal mixed into a float max() fails to compile here, as it should.
HOST_PRELUDE = """#include <cmath>
#include <algorithm>
using std::exp; using std::expm1; using std::log; using std::log1p; using std::sqrt;
using std::tanh; using std::fabs; using std::abs; using std::max; using std::min;
using std::fmax; using std::fmin; using std::isfinite; using std::isnan; using std::copysign;
"""


def host_source(kernel: Kernel, ctype: str) -> str:
    """``kernel.cuda`` as a host C++ function ``<cuda_name>_<ctype>(arrays..., n)``.

    The same text as on the GPU, bound as CuPy binds it (``const T x`` for inputs,
    scalars by value in their declared type, ``T& y`` for outputs) inside a loop over
    ``n`` elements whose index is ``i``, from 0.
    Compiled with g++ (``-Wdouble-promotion -Werror``) by the tests, so a CUDA body
    that computes the wrong thing, or in double, fails on a CPU-only machine.
    """
    ins, outs, scalars = kernel.input_names, kernel.output_names, kernel.scalars
    params = [f"const {kernel.ctype(n, ctype)} {n}" if n in scalars else f"const {ctype}* __restrict__ {n}_"
              for n in ins]
    params += [f"{ctype}* __restrict__ {n}_" for n in outs]
    binds = [f"const T {n} = {n}_[i];" for n in ins if n not in scalars] + [f"T& {n} = {n}_[i];" for n in outs]
    return "\n".join([
        f'extern "C" void {kernel.cuda_name}_{ctype}({", ".join(params)}, const long long n) {{',
        f"    typedef {ctype} T;",
        "    for (long long i = 0; i < n; ++i) {",
        *("        " + b for b in binds),
        f"        {kernel.cuda};",
        "    }",
        "}",
    ])


def sample_arguments(kernel, dtype, rng, n=257, spread=1.0):
    """Host arguments for ``kernel``: array inputs in [-spread, spread], scalar inputs
    (hyperparameters such as lr or slope, ``kernel.scalars``) one of ``kernel.examples``
    (else uniform in [0.1, 0.9]), outputs (state read in place, e.g. Adam's v) in [0, 1]
    then made consistent by ``kernel.prepare``."""
    dtype = np.dtype(dtype)
    example = iter(kernel.examples[rng.integers(len(kernel.examples))] if kernel.examples
                   else rng.uniform(0.1, 0.9, len(kernel.scalars)))
    ins = [kernel.scalar_dtype(name, dtype).type(next(example)) if name in kernel.scalars
           else rng.uniform(-spread, spread, n).astype(dtype) for name in kernel.input_names]
    outs = [rng.uniform(0, 1, n).astype(dtype) for _ in kernel.output_names]
    if kernel.prepare is not None:
        kernel.prepare(ins, outs)
    return ins, outs
