"""CupyBackend: the CUDA path. Registry kernels become ``cupy.ElementwiseKernel``."""
from __future__ import annotations

import numpy as np

from .._compat import cupy
from .base import Backend

_compiled: dict[str, object] = {}


def elementwise_kernel(kernel):
    """The ``cupy.ElementwiseKernel`` of a registry kernel, built once and cached."""
    if kernel.name not in _compiled:
        _compiled[kernel.name] = cupy.ElementwiseKernel(
            kernel.inputs, kernel.outputs, kernel.cuda, kernel.cuda_name)
    return _compiled[kernel.name]


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

    def to_numpy(self, x) -> np.ndarray:
        return cupy.asnumpy(x) if isinstance(x, cupy.ndarray) else np.asarray(x)

    def synchronize(self) -> None:
        cupy.cuda.Device(self.device_id).synchronize()

    def activate(self):
        return cupy.cuda.Device(self.device_id)

    def _launch(self, kernel, args) -> None:
        with self.activate():
            elementwise_kernel(kernel)(*args)
