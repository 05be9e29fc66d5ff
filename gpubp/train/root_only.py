"""Checks of what rank 0 alone writes (fit's ``checkpoint_path``; gpubp train's --save, --log and
--plot): run on rank 0, whose file system decides, and its verdict every rank's. On a cluster each
node may have a file system of its own: a rank other than 0 may lack the folder rank 0 writes to
(and would refuse a run that rank 0 writes fine), or have one that rank 0 lacks (and would pass a
path that rank 0 then fails on). What every rank reads (data, a checkpoint to resume) is each
rank's own to check, under ``comm.guard``, which names the rank that fails."""
from __future__ import annotations

from .. import errors
from ..errors import GpubpError


def on_root(comm, what, check):
    """``check()`` on rank 0 alone: its result there, None on the other ranks. A gpubp error it
    raises is raised on every rank alike (the same class and message, ``everywhere``: each rank
    stops here, none waits for another); anything else rank 0 meets (an OSError, a Ctrl-C) stops
    every rank through ``comm.guard(what)``. Without ``comm``, ``check()``."""
    if comm is None:
        return check()
    result = error = None
    with comm.guard(what):
        if comm.is_root:
            try:
                result = check()
            except GpubpError as exc:
                error = exc
    said = comm.mpi.bcast(None if error is None else (type(error).__name__, str(error)), root=0)
    if said is not None:
        raise _alike(error, *said)
    return result


def _alike(error, kind, message):
    """Rank 0's ``error`` (None on the other ranks: made again from its class name ``kind`` in
    ``gpubp.errors`` and its ``message``; a GpubpError where that class is not there or does not take
    a message as it is), marked as raised on every rank."""
    if error is None:
        kind = getattr(errors, kind, None)
        error = kind(message) if isinstance(kind, type) and issubclass(kind, GpubpError) else None
        error = error if error is not None and str(error) == message else GpubpError(message)
    error.everywhere = True
    return error
