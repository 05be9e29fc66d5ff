"""The kernel registry and every kernel in it.

Each kernel is declared once (``registry.Kernel``): its CUDA body, its in-place
NumPy path and a plain NumPy reference. Layers and optimizers hold the kernel
objects themselves (``activations.sigmoid``), so "go to definition" reaches the
formula; ``KERNELS`` lists them all by name for the tests and the doctor.
``dropout`` holds the one index-aware kernel (its mask hashes the element's index).
``gemm`` is not elementwise and not in the registry: the matrix product captured
CUDA graphs use, where CuPy refuses cuBLAS. ``scratch`` keeps the NumPy paths' scratch arrays
(one set per thread), so no kernel allocates per call.
"""
from . import activations, dropout, gemm, updates
from .registry import HOST_PRELUDE, KERNELS, Kernel, cuda_source, host_source, register, sample_arguments

__all__ = ["HOST_PRELUDE", "KERNELS", "Kernel", "cuda_source", "host_source", "register", "sample_arguments", "activations", "dropout", "gemm", "updates"]
