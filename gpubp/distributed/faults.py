"""When a rank fails: ``guard`` turns an exception on one rank into the same ``RankFailure`` on
every rank, ``abort`` ends every rank, and ``install_abort_hook`` aborts them all when an exception
escapes one rank, instead of leaving the others waiting in a collective."""
from __future__ import annotations

import contextlib
import os
import sys

import numpy as np

from .errors import RankFailure
from .transport import MPI


@contextlib.contextmanager
def guard(comm, what, steps=None):
    """``Communicator.guard``: at the end of the section every rank of ``comm`` learns whether
    any rank raised, and if one did every rank raises the same RankFailure; with ``steps`` (fit's
    ``interrupts.Steps``), also whether any rank noted a Ctrl-C, and if one did every rank stops
    at the end of this step. An error raised on every rank alike (``everywhere``: a RankFailure of
    a guard inside this one, a MismatchError) passes as it is: every rank is here with it."""
    try:
        yield
    except Exception as exc:
        if not getattr(exc, "everywhere", False):
            _agree(comm, what, exc, steps)
        raise
    else:
        _agree(comm, what, None, steps)


def _agree(comm, what, exc, steps):
    flag = np.array([exc is not None, steps is not None and steps.noted], dtype=np.int32)
    comm.mpi.Allreduce(MPI.IN_PLACE, flag, op=MPI.SUM)
    if flag[1] and steps is not None:
        steps.agree()
    if not flag[0]:
        return
    reports = comm.mpi.allgather(None if exc is None else f"{type(exc).__name__}: {exc}")
    failed = [r for r, report in enumerate(reports) if report is not None]
    first = failed[0]
    others = f" (ranks {', '.join(map(str, failed))} failed)" if len(failed) > 1 else ""
    raise RankFailure(f"rank {first} of {comm.size} failed during {what}: {reports[first]}{others}; "
                      f"every rank stopped", first, failed) from exc


def abort(comm, message: str, code: int = 1) -> None:
    """Print ``message`` and end every rank of ``comm`` now (``MPI_Abort``); after ``MPI.Finalize()``,
    when MPI can no longer abort anything (it would only say so), this process alone."""
    if MPI.Is_finalized():
        sys.stderr.write(f"gpubp.distributed: rank {comm.rank} of {comm.size}: {message}; MPI was finalized, so "
                         f"this process ends alone\n")
        sys.stderr.flush()
        os._exit(code)
    sys.stderr.write(f"gpubp.distributed: rank {comm.rank} of {comm.size}: {message}; aborting every rank\n")
    sys.stderr.flush()
    comm.mpi.Abort(code)


def install_abort_hook(comm) -> None:
    """After an uncaught exception that only this rank raised, print it and abort every rank. Errors
    raised on every rank alike (``everywhere``) just print, and every rank exits with status 1."""
    previous = sys.excepthook

    def hook(kind, exc, tb):
        previous(kind, exc, tb)
        if not getattr(exc, "everywhere", False):
            comm.abort(f"uncaught {kind.__name__}: {exc}")

    sys.excepthook = hook
