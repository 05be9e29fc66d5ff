"""NumpyBackend: the CPU path, and the reference every other backend is tested against."""
from __future__ import annotations

import numpy as np

from .base import Backend


class NumpyBackend(Backend):
    xp = np
    name = "numpy"
    device = "cpu"

    def is_own(self, x) -> bool:
        return isinstance(x, np.ndarray)

    def _to_device(self, host, dtype):
        return np.array(host, dtype=dtype, copy=True)

    def to_numpy(self, x) -> np.ndarray:
        if hasattr(x, "get") and not isinstance(x, np.ndarray):
            return x.get()
        return np.asarray(x)

    def _launch(self, kernel, args) -> None:
        kernel.numpy(*args)
