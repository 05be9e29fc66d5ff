"""The kernel record and its registry: each custom elementwise kernel declared once.

A :class:`Kernel` carries (a) its CUDA body, compiled by CuPy as an
``ElementwiseKernel`` on a GPU, (b) its NumPy fast path, which writes into
the output arrays in place, and (c) a plain NumPy reference formula used by
the tests. ``KERNELS`` is iterable, so tests cover every kernel automatically,
and :func:`cuda_source` turns a kernel into a standalone CUDA translation unit
that NVRTC can compile on a machine without a GPU.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np

KERNELS: dict[str, "Kernel"] = {}


@dataclass(frozen=True)
class Kernel:
    """One elementwise kernel.

    ``inputs``/``outputs`` use CuPy's ``ElementwiseKernel`` syntax (``"T z"``).
    Output names may also be read in ``cuda`` (in-place updates), exactly as
    CuPy allows. ``numpy(*inputs, *outputs)`` must fill the outputs in place;
    ``reference(*inputs, *outputs)`` returns the new output value(s) as plain
    NumPy expressions (a tuple when there are several outputs). Inputs named in
    ``scalars`` are hyperparameters passed as numbers; all other arguments are arrays.
    """

    name: str
    inputs: str
    outputs: str
    cuda: str
    numpy: Callable
    reference: Callable
    formula: str = ""  # the math in one line, shown in reports
    scalars: tuple = ()  # input names that are scalars (hyperparameters), not arrays

    @cached_property
    def input_names(self) -> list[str]:
        return _names(self.inputs)

    @cached_property
    def output_names(self) -> list[str]:
        return _names(self.outputs)

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
    KERNELS[kernel.name] = kernel
    return kernel


def _names(params: str) -> list[str]:
    return [p.split()[-1] for p in params.split(",") if p.strip()]


def cuda_source(kernel: Kernel, ctype: str) -> str:
    """A standalone ``__global__`` function running ``kernel.cuda`` with ``T = ctype``.

    It binds the parameters the way CuPy's ElementwiseKernel does (``const T x``
    for inputs, ``T& y`` for outputs), so a body that compiles here compiles
    inside CuPy too. Used by the NVRTC compile check; needs no GPU.
    """
    ins, outs = kernel.input_names, kernel.output_names
    params = [f"const {ctype}* __restrict__ {n}_" for n in ins] + [f"{ctype}* {n}_" for n in outs]
    binds = [f"const T {n} = {n}_[i];" for n in ins] + [f"T& {n} = {n}_[i];" for n in outs]
    return "\n".join([
        f'extern "C" __global__ void {kernel.cuda_name}_{ctype}({", ".join(params)}, const long long n) {{',
        "    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;",
        "    if (i >= n) return;",
        f"    typedef {ctype} T;",
        *("    " + b for b in binds),
        f"    {kernel.cuda};",
        "}",
    ])


def sample_arguments(kernel, dtype, rng, n=257, spread=1.0):
    """Host arguments for ``kernel``: array inputs in [-spread, spread], scalar inputs
    (hyperparameters such as lr or slope, ``kernel.scalars``) in [0.1, 0.9], outputs
    (state read in place, e.g. Adam's v) in [0, 1]."""
    dtype = np.dtype(dtype)
    ins = [dtype.type(rng.uniform(0.1, 0.9)) if name in kernel.scalars
           else rng.uniform(-spread, spread, n).astype(dtype) for name in kernel.input_names]
    return ins, [rng.uniform(0, 1, n).astype(dtype) for _ in kernel.output_names]
