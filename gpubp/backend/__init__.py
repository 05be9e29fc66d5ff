"""Array backends (NumPy on the CPU, CuPy on CUDA) and the kernel registry."""
from . import activation_kernels, update_kernels  # noqa: F401  (register the kernels)
from .base import Backend, as_float_dtype, describe
from .numpy_backend import NumpyBackend
from .registry import KERNELS, Kernel, cuda_source, register
from .select import auto_choice, backend_of, default_device, get_backend, parse_device, use_backend

__all__ = ["Backend", "NumpyBackend", "KERNELS", "Kernel", "register", "cuda_source",
           "get_backend", "use_backend", "auto_choice", "backend_of", "default_device", "parse_device",
           "as_float_dtype", "describe"]
