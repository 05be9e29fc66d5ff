"""Facts about this machine, shared by ``gpubp check``, ``gpubp info`` and the benchmarks:
versions, CuPy distributions, CUDA devices, whether a GPU is expected, what ``auto`` picks."""
from __future__ import annotations

import importlib.metadata
import os
import platform
import re

import numpy as np

from ... import _compat
from ..._version import __version__
from ...backend import auto_choice, huge_pages, parse_spec, threads
from ...errors import GpubpError


def cupy_distributions() -> list[tuple[str, str]]:
    """Installed CuPy distributions ``(name, version)``: more than one breaks CuPy."""
    found = {}
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if re.fullmatch(r"cupy(-cuda\d+x?|-rocm[-\d]*)?", name):
            found[name] = dist.version
    return sorted(found.items())


def _cuda_version(code: int) -> str:
    return f"{code // 1000}.{code % 1000 // 10}" if code else "none"


def versions() -> dict:
    """gpubp, Python, NumPy, CuPy (package and version) and CUDA driver/runtime/NVRTC versions."""
    out = {"gpubp": __version__, "python": platform.python_version(), "numpy": np.__version__,
           "cupy": None, "cupy_package": ", ".join(n for n, _ in cupy_distributions()) or None,
           "cuda_runtime": None, "cuda_driver": None, "nvrtc": None}
    cp = _compat.cupy
    if cp is None:
        return out
    out["cupy"] = cp.__version__
    for key, get in (("cuda_runtime", lambda: _cuda_version(cp.cuda.runtime.runtimeGetVersion())),
                     ("cuda_driver", lambda: _cuda_version(cp.cuda.runtime.driverGetVersion())),
                     ("nvrtc", lambda: "%d.%d" % cp.cuda.nvrtc.getVersion())):
        try:
            out[key] = get()
        except Exception as exc:  # a missing library names itself here
            out[key] = f"unavailable ({type(exc).__name__})"
    return out


def devices() -> list[dict]:
    """Visible CUDA devices: id, name, memory (GiB), compute capability, usable."""
    cp = _compat.cupy
    try:
        count = cp.cuda.runtime.getDeviceCount() if cp is not None else 0
    except Exception:
        return []
    found = []
    for i in range(count):
        try:
            props = cp.cuda.runtime.getDeviceProperties(i)
        except Exception as exc:  # a device that cannot even be queried is listed as such
            found.append({"device": f"cuda:{i}", "name": f"unreadable ({type(exc).__name__}: {exc})",
                          "memory_gib": None, "compute_capability": None, "usable": False})
            continue
        name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
        found.append({"device": f"cuda:{i}", "name": name, "memory_gib": round(props["totalGlobalMem"] / 2**30, 1),
                      "compute_capability": f"{props['major']}.{props['minor']}",
                      "usable": _compat.gpu_status(i)[0]})
    return found


def requested_gpu() -> str | None:
    """The CUDA device ``GPUBP_DEVICE`` names (``gpu`` is cuda:0), else None (cpu, auto, unset, unknown)."""
    spec = os.environ.get("GPUBP_DEVICE", "")
    if not spec.strip() or spec.strip().lower().startswith("auto"):
        return None
    try:
        device = parse_spec(spec)[0]
    except GpubpError:
        return None
    return None if device == "cpu" else device


def gpu_expected() -> tuple[bool, str]:
    """Whether missing CUDA pieces are failures here, and why."""
    if requested_gpu():
        return True, f"GPUBP_DEVICE={os.environ['GPUBP_DEVICE']}"
    if os.path.exists("/dev/nvidiactl"):
        return True, "an NVIDIA driver is loaded (/dev/nvidiactl)"
    return False, "CPU-only machine"


# the rank and size an MPI launcher gives each process: Open MPI's, then MPICH's (PMI) names
MPI_ENV = (("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "Open MPI"), ("PMI_RANK", "PMI_SIZE", "MPICH"))


def mpi_launch() -> dict | None:
    """``{"rank", "size", "launcher"}`` when this process was started by mpiexec, read from the
    launcher's environment (without starting MPI), else None."""
    for rank, size, launcher in MPI_ENV:
        values = os.environ.get(rank, ""), os.environ.get(size, "")
        if all(v.strip().isdigit() for v in values):  # a variable set to something else is not a launch
            return {"rank": int(values[0]), "size": int(values[1]), "launcher": launcher}
    return None


def machine() -> dict:
    """Versions, devices, what ``auto`` picks and why, the CPU kernels' thread count, whether a step's
    host arrays lie on huge pages, and the MPI rank and size under mpiexec."""
    device, reason = auto_choice()
    return {"versions": versions(), "devices": devices(), "auto": {"device": device, "reason": reason},
            "GPUBP_DEVICE": os.environ.get("GPUBP_DEVICE"), "cpu_threads": threads(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "huge_pages": huge_pages.status(),
            "mpi": mpi_launch()}
