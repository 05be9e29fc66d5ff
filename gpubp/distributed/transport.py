"""MPI itself (importing this module starts it) and the transports the communicator sums and
broadcasts its buckets through: ``MPITransport`` here, ``NCCLTransport`` (nccl.py) on GPUs.

``mpi4py`` is the ``mpi`` extra (``pip install "gpubp[mpi]"``); without it, or without a loadable
MPI library, ``MPI`` is None and ``MPI_ERROR`` says why.
"""
from __future__ import annotations

import os
import shutil
import sys

from .._compat import is_cupy_array, to_host
from ..errors import DeviceError, InvalidValueError
from .errors import DistributedError
from .nccl import NCCLTransport

try:
    import mpi4py
    from mpi4py import MPI
    MPI_ERROR = ""
except Exception as exc:  # ImportError, or mpi4py without a loadable MPI library (RuntimeError)
    mpi4py = MPI = None
    MPI_ERROR = f"{type(exc).__name__}: {exc}"


class MPITransport:
    """Sums and broadcasts through MPI, in place; CuPy buffers go through host memory (an MPI
    library built without CUDA support cannot read device memory)."""

    name = "mpi"

    def __init__(self, mpi_comm):
        self.comm, self.calls = mpi_comm, 0

    def allreduce_(self, buf) -> None:
        self.calls += 1
        host = to_host(buf) if is_cupy_array(buf) else buf
        self.comm.Allreduce(MPI.IN_PLACE, host, op=MPI.SUM)
        if host is not buf:
            buf.set(host)

    def bcast_(self, buf, root) -> None:
        self.calls += 1
        host = to_host(buf) if is_cupy_array(buf) else buf
        self.comm.Bcast(host, root=root)
        if host is not buf:
            buf.set(host)

    def close(self) -> None:
        pass

    def refuse_other_devices(self, arrays) -> None:
        """MPI takes arrays of any device: CuPy arrays go through host memory."""


def mpi_running() -> None:
    """Refuse, before MPI is asked anything, an MPI that is not running: not initialised
    (``mpi4py.rc.initialize = False`` and no ``MPI.Init()``) or already finalized. Asked then,
    MPI ends the process with its own message (Open MPI: "called before MPI_INIT")."""
    if not MPI.Is_initialized():
        raise DistributedError("MPI is not initialised in this process (mpi4py.rc.initialize is False?): call "
                               "mpi4py.MPI.Init() before making a communicator, or leave mpi4py.rc.initialize "
                               "True")
    if MPI.Is_finalized():
        raise DistributedError("MPI was finalized in this process (MPI.Finalize()); a communicator cannot be "
                               "made or used after it: finalize at the end of the program only")


# the rank and size a launcher gives each process it starts: Open MPI's mpiexec, then MPICH's Hydra (PMI)
LAUNCHERS = (("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"), ("PMI_RANK", "PMI_SIZE"))


def refuse_other_launcher(size: int) -> None:
    """Refuse a process that a launcher started as one of N while MPI sees a world of ``size``
    processes: the launcher is not the one of the MPI library mpi4py loaded (MPICH's Hydra with
    Open MPI's wheel, or the reverse), so each process is a world of its own and would train alone."""
    for rank_name, size_name in LAUNCHERS:
        rank, launched = os.environ.get(rank_name, "").strip(), os.environ.get(size_name, "").strip()
        if rank.isdigit() and launched.isdigit() and int(launched) != size:
            library = MPI.Get_library_version().strip().splitlines()[0].split(",")[0]
            here = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or "the mpiexec of that library"
            raise DistributedError(f"this process was started as rank {rank} of {launched} ({rank_name}, {size_name}), "
                                   f"but the MPI library mpi4py loaded ({library}) sees a world of {size} process(es): "
                                   f"the launcher is another MPI's, and each process would train alone; start the "
                                   f"ranks with {here}")


def check_transport_name(transport):
    """``transport`` ("mpi", "nccl", None: chosen by device), refused before MPI is asked anything."""
    if transport not in (None, "mpi", "nccl"):
        raise InvalidValueError(f"transport must be 'mpi' or 'nccl', got {transport!r}")
    return transport


def make_transport(mpi_comm, device, transport):
    """The transport named ``transport`` for a rank on ``device`` ("cpu" or "cuda:<id>");
    None: NCCL on CUDA, MPI on the CPU."""
    cuda = device.startswith("cuda")
    transport = transport or ("nccl" if cuda else "mpi")
    if transport == "mpi":
        return MPITransport(mpi_comm)
    if not cuda:
        raise DeviceError("the NCCL transport reduces GPU buffers: use device='cuda'")
    return NCCLTransport(mpi_comm, int(device.split(":")[1]))
