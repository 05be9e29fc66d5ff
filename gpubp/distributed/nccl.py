"""The NCCL transport: sums and broadcasts of CuPy buffers between GPUs, one GPU per rank.

Written against CuPy's documented binding (``cupy.cuda.nccl``: ``get_unique_id``,
``NcclCommunicator(ndev, commId, rank)``, ``allReduce(sendbuf, recvbuf, count, datatype, op,
stream)``, ``bcast(buff, count, datatype, root, stream)``, ``destroy``); rank 0's unique id
travels over MPI. The calls are queued on the current CuPy stream of the rank's device, so the
copies around them (packing and unpacking the buckets) stay in order without a host sync.

Status: not run on this project's CPU machines (no GPU, no NCCL library there); the gpu-marked
test in tests/distributed runs it with one rank. NCCL comes with the CUDA extras where CuPy can
load it: the ``nvidia-nccl-cu12`` / ``nvidia-nccl-cu13`` wheel matching the CuPy wheel.
"""
from __future__ import annotations

import warnings

import numpy as np

from .._compat import cupy, is_cupy_array
from ..errors import DeviceError, DTypeError


class NCCLTransport:
    """NCCL communicator of the MPI world's ranks, each on GPU ``device_id``."""

    name = "nccl"

    def __init__(self, mpi_comm, device_id: int):
        with warnings.catch_warnings():  # CuPy warns at import when libnccl is missing; we say it below
            warnings.simplefilter("ignore")
            from cupy.cuda import nccl  # CuPy's NCCL binding, an optional dependency
        self.nccl, self.device_id, self.calls = nccl, int(device_id), 0
        rank, size = mpi_comm.Get_rank(), mpi_comm.Get_size()
        problem, uid = None, None
        if not getattr(nccl, "available", False):
            problem = "CuPy cannot load NCCL (pip install the nvidia-nccl-cu12 or -cu13 wheel matching CuPy)"
        elif rank == 0:
            try:
                with cupy.cuda.Device(self.device_id):
                    uid = nccl.get_unique_id()
            except Exception as exc:
                problem = f"ncclGetUniqueId failed ({type(exc).__name__}: {exc})"
        problems = mpi_comm.allgather(problem)  # every rank agrees before anyone waits inside NCCL
        bad = [(r, p) for r, p in enumerate(problems) if p]
        if bad:
            raise DeviceError(f"NCCL transport: rank {bad[0][0]} of {size}: {bad[0][1]}")
        uid = mpi_comm.bcast(uid, root=0)
        with cupy.cuda.Device(self.device_id):
            self.comm = nccl.NcclCommunicator(size, uid, rank)
        self.types = {np.dtype(np.float32): nccl.NCCL_FLOAT32, np.dtype(np.float64): nccl.NCCL_FLOAT64}

    def allreduce_(self, buf) -> None:
        kind = self._check(buf)
        self.calls += 1
        with cupy.cuda.Device(self.device_id):
            stream = cupy.cuda.get_current_stream().ptr
            self.comm.allReduce(buf.data.ptr, buf.data.ptr, buf.size, kind, self.nccl.NCCL_SUM, stream)

    def bcast_(self, buf, root) -> None:
        kind = self._check(buf)
        self.calls += 1
        with cupy.cuda.Device(self.device_id):
            self.comm.bcast(buf.data.ptr, buf.size, kind, root, cupy.cuda.get_current_stream().ptr)

    def close(self) -> None:
        self.comm.destroy()

    def refuse_other_devices(self, arrays) -> None:
        """Refuse, before any collective, arrays NCCL cannot read: only CuPy arrays on this rank's GPU."""
        for i, a in enumerate(arrays):
            if not is_cupy_array(a) or a.device.id != self.device_id:
                where = f" on cuda:{a.device.id}" if is_cupy_array(a) else ""
                raise DeviceError(f"this communicator sums over NCCL on cuda:{self.device_id}, but the array at "
                                  f"position {i} is a {type(a).__module__}.{type(a).__name__}{where}; build the "
                                  f"model on comm.device, or make the communicator with world(transport='mpi')")

    def _check(self, buf):
        if not is_cupy_array(buf) or buf.device.id != self.device_id:
            raise DeviceError(f"the NCCL transport reduces CuPy arrays on cuda:{self.device_id}, got "
                              f"{type(buf).__module__}.{type(buf).__name__}"
                              + (f" on cuda:{buf.device.id}" if is_cupy_array(buf) else ""))
        if buf.dtype not in self.types or not buf.flags.c_contiguous:
            raise DTypeError(f"the NCCL transport needs contiguous float32/float64 buffers, got {buf.dtype}")
        return self.types[buf.dtype]
