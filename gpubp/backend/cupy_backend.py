"""CupyBackend: the CUDA path. Registry kernels become ``cupy.ElementwiseKernel``."""
from __future__ import annotations

import contextlib

import numpy as np

from .._compat import cupy
from ..errors import OutOfMemoryError
from .base import Backend

_compiled: dict[str, object] = {}


def elementwise_kernel(kernel):
    """The ``cupy.ElementwiseKernel`` of a registry kernel, built once and cached."""
    if kernel.name not in _compiled:
        _compiled[kernel.name] = cupy.ElementwiseKernel(
            kernel.inputs, kernel.outputs, kernel.cuda, kernel.cuda_name)
    return _compiled[kernel.name]


def out_of_memory(device, exc) -> OutOfMemoryError:
    """gpubp's error for a CuPy allocation failure: how much was asked, and what to do."""
    return OutOfMemoryError(f"{device} ran out of memory: {exc}. Use a smaller batch size or model, "
                            f"free other arrays (cupy.get_default_memory_pool().free_all_blocks()), "
                            f"or pick another GPU with --device cuda:N")


class CupyBackend(Backend):
    name = "cupy"

    def __init__(self, device_id: int = 0, dtype="float32"):
        super().__init__(dtype)
        self.xp = cupy
        self.device_id = device_id
        self.device = f"cuda:{device_id}"

    def is_own(self, x) -> bool:
        return isinstance(x, cupy.ndarray) and x.device.id == self.device_id

    def _to_device(self, host, dtype):
        with self.activate():
            if isinstance(host, cupy.ndarray):
                return host.astype(dtype, copy=True)
            return cupy.asarray(np.ascontiguousarray(host, dtype=dtype))

    def synchronize(self) -> None:
        cupy.cuda.Device(self.device_id).synchronize()

    @contextlib.contextmanager
    def activate(self):
        """This device, and CUDA out-of-memory turned into gpubp's OutOfMemoryError."""
        with cupy.cuda.Device(self.device_id):
            try:
                yield
            except cupy.cuda.memory.OutOfMemoryError as exc:
                raise out_of_memory(self.device, exc) from exc

    def zeros(self, shape, dtype=None):
        with self.activate():
            return super().zeros(shape, dtype)

    def empty(self, shape, dtype=None):
        with self.activate():
            return super().empty(shape, dtype)

    def run(self, kernel, args) -> None:
        with self.activate():
            elementwise_kernel(kernel)(*args)
