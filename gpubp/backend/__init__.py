"""Array backends (NumPy on the CPU, CuPy on CUDA), the kernel registry, and choosing one.

``get_backend("auto" | "cpu" | "gpu" | "cuda:N", dtype)``; a spec may name its dtype
too (``"cuda:1/float64"``, see :func:`parse_spec`). The default spec comes from the
innermost ``use_backend`` block, else the environment variable ``GPUBP_DEVICE``,
else ``"auto"``. ``"auto"`` picks CuPy only when a CUDA device actually computes
(see ``_compat.gpu_status``) and records why it chose what it chose (``auto_choice()``).
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import os

from .. import _checks
from .._compat import gpu_status, is_cupy_array
from ._blocks import omp_threads, threads
from ..errors import DeviceError, GpubpError
from .base import Backend, as_float_dtype
from .kernels import KERNELS, Kernel
from .numpy_backend import NumpyBackend
from .operands import describe

__all__ = ["Backend", "NumpyBackend", "KERNELS", "Kernel", "get_backend", "use_backend", "auto_choice",
           "backend_of", "default_device", "parse_spec", "as_float_dtype", "describe", "threads", "omp_threads"]

_default: contextvars.ContextVar = contextvars.ContextVar("gpubp_backend", default=None)


def auto_choice() -> tuple[str, str]:
    """``(device, reason)``: what ``"auto"`` resolves to on this machine, and why."""
    ok, reason = gpu_status(0)
    if ok:
        return "cuda:0", f"CuPy and a working CUDA device ({reason})"
    return "cpu", f"no usable GPU, using NumPy: {reason}"


def parse_spec(spec) -> tuple[str, str | None]:
    """``(device, dtype or None)`` from a spec: ``"cpu"``, ``"gpu"``, ``"cuda:1/float64"``,
    ``("cpu", "float64")``; the device is ``"cpu"`` or ``"cuda:N"`` (``"auto"`` is resolved)."""
    if isinstance(spec, (tuple, list)) and len(spec) == 2:
        device, dtype = spec
    else:
        device, _, dtype = str(spec).partition("/")
    device = str(device).strip().lower()
    dtype = as_float_dtype(dtype).name if dtype else None
    if device == "auto":
        return auto_choice()[0], dtype
    if device in ("cpu", "numpy"):
        return "cpu", dtype
    if device in ("gpu", "cuda", "cupy"):
        return "cuda:0", dtype
    if device.startswith("cuda:") and device[5:].isdigit():
        return f"cuda:{int(device[5:])}", dtype
    raise DeviceError(f"unknown device {device!r}; use 'auto', 'cpu', 'gpu' or 'cuda:N', "
                      f"optionally with a dtype: 'cuda:0/float64'")


def default_device(check=False) -> str:
    """The spec used when none is given: the innermost ``use_backend``, else ``$GPUBP_DEVICE``, else auto.
    With ``check``, a ``$GPUBP_DEVICE`` that is no device spec is refused naming the variable (the
    user gave no device, so an error naming only its value would not say where it came from)."""
    spec = _default.get() or os.environ.get("GPUBP_DEVICE") or "auto"
    if _checks.flag("check", check) and not _default.get():  # use_backend's spec was checked when its block began
        try:
            parse_spec(spec)
        except GpubpError as exc:
            raise type(exc)(f"GPUBP_DEVICE={spec!r} (the device when none is given): {exc}; set it to "
                            f"a device spec or unset it") from None
    return spec


def get_backend(spec=None, dtype=None) -> Backend:
    """The backend for ``spec`` (a Backend, a spec string, or None for the default device).

    ``dtype`` re-types a Backend and is the dtype of a spec that names none (float32
    when neither does); a spec naming a different dtype than ``dtype`` is refused.
    """
    if isinstance(spec, Backend):
        return spec if dtype is None or spec.dtype == as_float_dtype(dtype) else _make(spec.device, as_float_dtype(dtype).name)
    given = default_device(check=True) if spec is None else spec
    device, named = parse_spec(given)
    if named and dtype is not None and as_float_dtype(dtype).name != named:
        where = " (the default, from use_backend or GPUBP_DEVICE)" if spec is None else ""
        raise DeviceError(f"backend {given!r}{where} names dtype {named} but dtype={as_float_dtype(dtype).name} "
                          f"was asked for; give one of them")
    return _make(device, named or as_float_dtype("float32" if dtype is None else dtype).name)


@functools.lru_cache(maxsize=None)
def _make(device: str, dtype: str) -> Backend:
    if device == "cpu":
        return NumpyBackend(dtype)
    device_id = int(device.split(":")[1])
    ok, reason = gpu_status(device_id)
    if not ok:
        raise DeviceError(f"{device} requested but unusable: {reason}")
    from .cupy_backend import CupyBackend  # the one lazy import: CuPy only once a GPU is asked for
    return CupyBackend(device_id, dtype)


def backend_of(x) -> Backend:
    """The backend an array lives on, with the array's dtype (used by losses)."""
    if not hasattr(x, "dtype") or not hasattr(x, "shape"):
        raise DeviceError(f"expected a NumPy or CuPy array, got {describe(x)}; "
                          f"convert it with backend.asarray(x)")
    device = f"cuda:{x.device.id}" if is_cupy_array(x) else "cpu"
    return _make(device, as_float_dtype(x.dtype).name)


@contextlib.contextmanager
def use_backend(spec):
    """``with use_backend("cpu"): ...`` makes ``spec`` the default inside the block: its device, and
    its dtype when it names one (``"cpu/float64"``, a Backend), as ``GPUBP_DEVICE`` does."""
    if isinstance(spec, Backend):
        default = f"{spec.device}/{spec.dtype.name}"
    else:
        device, dtype = parse_spec(spec)
        default = device if dtype is None else f"{device}/{dtype}"
    token = _default.set(default)
    try:
        yield get_backend(default)
    finally:
        _default.reset(token)
