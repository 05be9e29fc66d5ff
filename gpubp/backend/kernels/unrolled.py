"""A registry kernel as CUDA runs it: four elements per thread, every load first.

CuPy's ElementwiseKernel gives each thread one element. A kernel that reads one array and
writes one (an activation) then has too few loads in flight to keep an H200's memory busy:
on one it moved 42% of a device copy's bandwidth, where PyTorch's own kernels (four elements
per thread) move about 90%. Here every array is a ``raw`` parameter and the kernel is launched
with m = ceil(n / 4) threads: thread i takes elements j = i + k m (k < 4, so each load of a warp
is coalesced), loads the inputs, and the outputs the body reads, of all four, then runs the body
once per element with ``i`` = j, its flat index, as CuPy's own loop would. On the H200 this moved
94-101% of a copy's bandwidth for 15 of the 17 kernels (benchmarks/README.md, 2026-12-04).
"""
from __future__ import annotations

PER_THREAD = 4


def unrolled(kernel, array_scalars=()) -> tuple[str, str, str]:
    """``(in_params, out_params, operation)`` of the CuPy ElementwiseKernel that runs ``kernel``
    on PER_THREAD elements per thread, called with ``size=threads(n)``; ``x_`` is array x, ``x_4``
    a thread's values of it. The scalars named in ``array_scalars`` are given as 0-d device arrays
    (a learning rate read anew at each launch): raw too, as CuPy takes ``size`` only when every
    array is."""
    arrays = [n for n in kernel.input_names if n not in kernel.scalars]
    loaded = arrays + [n for n in kernel.output_names if kernel.reads(n)]
    ins = ", ".join(f"raw {kernel.types[n]} {n}_" if n in arrays or n in array_scalars else f"{kernel.types[n]} {n}"
                    for n in kernel.input_names)
    outs = ", ".join(f"raw T {n}_" for n in kernel.output_names)
    values = [f"const T {n} = {n}_4[_k];" for n in arrays]
    values += [f"T {n} = {n}_4[_k];" if n in loaded else f"T {n};" for n in kernel.output_names]
    operation = "\n".join([
        f"const ptrdiff_t _threads = _ind.size(), _size = {arrays[0]}_.size();",
        *(f"const {kernel.ctype(n, 'T')} {n} = {n}_[0];" for n in kernel.input_names if n in array_scalars),
        *(f"T {n}_4[{PER_THREAD}];" for n in loaded),
        f"for (int _k = 0; _k < {PER_THREAD}; ++_k) {{",
        "    const ptrdiff_t _j = i + _k * _threads;",
        "    if (_j < _size) { " + " ".join(f"{n}_4[_k] = {n}_[_j];" for n in loaded) + " }",
        "}",
        f"for (int _k = 0; _k < {PER_THREAD}; ++_k) {{",
        "    const ptrdiff_t _j = i + _k * _threads;",
        "    if (_j >= _size) break;",
        *(["    const ptrdiff_t i = _j;"] if kernel.indexed else []),
        *("    " + v for v in values),
        f"    {{ {kernel.cuda}; }}",
        "    " + " ".join(f"{n}_[_j] = {n};" for n in kernel.output_names),
        "}",
    ])
    return ins, outs, operation


def threads(n: int) -> int:
    """The threads (CuPy's ``size``) of a launch over ``n`` elements."""
    return -(-n // PER_THREAD)
