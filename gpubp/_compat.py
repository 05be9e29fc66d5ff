"""The one module that imports CuPy.

Two flags, as in thinc's ``compat``: ``has_cupy`` (CuPy can be imported) and
``gpu_status()`` (a CUDA device exists *and* runs a kernel). Everything else in
gpubp imports CuPy from here, so ``import gpubp`` works on any CPU-only machine.
"""
from __future__ import annotations

import functools

import numpy as np

try:  # pragma: no cover - depends on the machine
    import cupy
    has_cupy = True
    cupy_import_error, cupy_import_failed = "", False
except Exception as exc:  # ImportError, or a broken CUDA install raising at import
    cupy = None
    has_cupy = False
    cupy_import_error = f"{type(exc).__name__}: {exc}"
    cupy_import_failed = not (isinstance(exc, ModuleNotFoundError) and exc.name == "cupy")  # installed, broken


@functools.lru_cache(maxsize=None)
def gpu_status(device_id: int = 0) -> tuple[bool, str]:
    """Return ``(usable, reason)`` for CUDA device ``device_id``.

    Usable means more than "cupy imports": the device exists and a tiny
    computation runs on it. The reason says what is missing otherwise.
    """
    if not has_cupy:
        return False, cupy_problem()
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return False, _no_device_reason(exc)
    if device_id >= count:
        return False, f"cuda:{device_id} requested but only {count} CUDA device(s) are visible"
    try:
        with cupy.cuda.Device(device_id):
            total = int(cupy.arange(4, dtype=cupy.float32).sum())
        if total != 6:
            return False, f"cuda:{device_id} computed a wrong result in the self-test"
    except Exception as exc:
        return False, f"cuda:{device_id} is visible but failed a test computation ({type(exc).__name__}: {exc})"
    return True, f"cuda:{device_id} works"


MEND_CUPY = ("mend what the import error names (CUPY_CACHE_DIR must be a folder CuPy can create, the CUDA "
             "libraries must load), or reinstall CuPy")


def cupy_problem() -> str:
    """Why CuPy cannot be imported, with what to do: install it, or mend an installed CuPy whose import
    fails (a CUPY_CACHE_DIR it cannot create, missing CUDA libraries); "" where it imports."""
    if has_cupy:
        return ""
    if cupy_import_failed:
        return (f"CuPy is installed, but importing it failed ({cupy_import_error}); {MEND_CUPY}")
    return f"CuPy is not installed ({cupy_import_error}); pip install 'gpubp[cuda12]' or 'gpubp[cuda13]'"


def _no_device_reason(exc) -> str:
    """Why CuPy sees no device, in words: "no NVIDIA driver found" when none is loaded (CuPy
    then says "driver version is insufficient"), else the driver that is too old, else CuPy's error."""
    detail = f"{type(exc).__name__}: {exc}"
    try:
        driver = cupy.cuda.runtime.driverGetVersion()
    except Exception:
        driver = 0
    if driver == 0:
        return f"no NVIDIA driver found (CuPy: {detail})"
    if "InsufficientDriver" in detail:
        runtime = cupy.cuda.runtime.runtimeGetVersion()
        return (f"the NVIDIA driver supports CUDA {driver // 1000}.{driver % 1000 // 10}, older than CuPy's "
                f"CUDA runtime {runtime // 1000}.{runtime % 1000 // 10} (CuPy: {detail})")
    return f"CuPy found no CUDA device ({detail})"


def is_cupy_array(x) -> bool:
    """True for a CuPy array on any device (False everywhere CuPy is missing)."""
    return has_cupy and isinstance(x, cupy.ndarray)


def to_host(x) -> np.ndarray:
    """A NumPy array with the values of ``x``: CuPy arrays are copied to the host,
    NumPy arrays pass through uncopied, anything else goes through ``np.asarray``."""
    return cupy.asnumpy(x) if is_cupy_array(x) else np.asarray(x)
