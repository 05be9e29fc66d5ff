"""Choosing a backend: ``get_backend("auto" | "cpu" | "gpu" | "cuda:N")``.

The default spec comes from the innermost ``use_backend`` block, else the
environment variable ``GPUBP_DEVICE``, else ``"auto"``. ``"auto"`` picks CuPy
only when a CUDA device actually computes (see ``_compat.gpu_status``) and
records why it chose what it chose (``auto_choice()``).
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import os

from .._compat import gpu_status
from ..errors import DeviceError
from .base import Backend, as_float_dtype
from .numpy_backend import NumpyBackend

_default: contextvars.ContextVar = contextvars.ContextVar("gpubp_backend", default=None)


def auto_choice() -> tuple[str, str]:
    """``(device, reason)``: what ``"auto"`` resolves to on this machine, and why."""
    ok, reason = gpu_status(0)
    if ok:
        return "cuda:0", f"CuPy and a working CUDA device ({reason})"
    return "cpu", f"no usable GPU, using NumPy: {reason}"


def parse_device(spec: str) -> str:
    """Normalise a device spec to ``"cpu"`` or ``"cuda:N"`` (``"auto"`` is resolved)."""
    spec = str(spec).strip().lower()
    if spec == "auto":
        return auto_choice()[0]
    if spec in ("cpu", "numpy"):
        return "cpu"
    if spec in ("gpu", "cuda", "cupy"):
        return "cuda:0"
    if spec.startswith("cuda:") and spec[5:].isdigit():
        return spec
    raise DeviceError(f"unknown device {spec!r}; use 'auto', 'cpu', 'gpu' or 'cuda:N'")


def default_device() -> str:
    return _default.get() or os.environ.get("GPUBP_DEVICE") or "auto"


def get_backend(spec=None, dtype="float32") -> Backend:
    """The backend for ``spec`` (a Backend passes through, re-typed if ``dtype`` differs)."""
    if isinstance(spec, Backend):
        return spec if spec.dtype == as_float_dtype(dtype) else get_backend(spec.device, dtype)
    return _make(parse_device(spec or default_device()), as_float_dtype(dtype).name)


@functools.lru_cache(maxsize=None)
def _make(device: str, dtype: str) -> Backend:
    if device == "cpu":
        return NumpyBackend(dtype)
    device_id = int(device.split(":")[1])
    ok, reason = gpu_status(device_id)
    if not ok:
        raise DeviceError(f"{device} requested but unusable: {reason}")
    from .cupy_backend import CupyBackend
    return CupyBackend(device_id, dtype)


def backend_of(x) -> Backend:
    """The backend an array lives on, with the array's dtype (used by losses)."""
    if not hasattr(x, "dtype") or not hasattr(x, "shape"):
        raise DeviceError(f"expected a NumPy or CuPy array, got {type(x).__name__}; "
                          f"convert it with backend.asarray(x)")
    if type(x).__module__.split(".")[0] == "cupy":
        return get_backend(f"cuda:{x.device.id}", x.dtype)
    return get_backend("cpu", x.dtype)


@contextlib.contextmanager
def use_backend(spec):
    """``with use_backend("cpu"): ...`` makes ``spec`` the default device inside the block."""
    device = spec.device if isinstance(spec, Backend) else parse_device(spec)
    token = _default.set(device)
    try:
        yield get_backend(device)
    finally:
        _default.reset(token)
