"""Which device each rank trains on, agreed by every rank before a transport starts: one GPU per
rank, by its rank among the processes of its machine (its local rank)."""
from __future__ import annotations

from .._compat import cupy, gpu_status
from ..errors import DeviceError, InvalidValueError


def agree_on_device(mpi_comm, local_rank, device) -> str:
    """"cpu" or "cuda:<id>" for this rank; "auto" is CUDA only when every rank has a GPU."""
    if device not in ("cpu", "cuda", "gpu", "auto"):
        raise InvalidValueError(f"device must be 'cpu', 'cuda' (or 'gpu': each rank takes the GPU of its "
                                f"local rank) or 'auto', got {device!r}")
    if device == "cpu":
        return "cpu"
    ok, reason = gpu_status(0)
    count = cupy.cuda.runtime.getDeviceCount() if ok else 0
    gpu = local_rank % count if count else None
    if gpu is not None:
        ok, reason = gpu_status(gpu)
        gpu = gpu if ok else None
    everyone = mpi_comm.allgather(None if gpu is not None else reason)  # agree before NCCL starts
    if device == "auto" and any(everyone):
        return "cpu"
    missing = [(r, why) for r, why in enumerate(everyone) if why]
    if missing:
        r, why = missing[0]
        error = DeviceError(f"device={device!r}, but rank {r} of {len(everyone)} has no usable GPU ({why})")
        error.everywhere = True  # every rank raises it, from the same allgather
        raise error
    return f"cuda:{gpu}"
