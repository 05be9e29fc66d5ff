"""How fit ends: the best epoch put back (restore_best), the checkpoint made to hold the model
returned, and the error that stopped a run, told with the whole epochs the model holds.
"""
from __future__ import annotations

from ..checkpoint.atomic import describe
from ..errors import CheckpointError, GpubpError, InvalidValueError, OutOfMemoryError
from ..history import History
from .epoch import guard
from .interrupts import deferred
from .resume import held_at, save_training


def _finish(model, optimizer, history, keeper, run, claim, every, extra, comm=None) -> History:
    """The end of fit: the best epoch put back (restore_best), and the checkpoint (``claim``'s path)
    made to hold the model returned when its last write was of an earlier epoch (``run``: the
    seed and batching it keeps). A Ctrl-C meanwhile waits for its end and is then dropped: the
    run is over, and the model returned and the checkpoint are whole (a second stops at once; with
    ``comm``, every rank)."""
    with deferred(running=True, comm=comm) as steps:
        restored = keeper is not None and keeper.restore(model, history)
        written = every and history.epochs % every == 0 and not restored
        try:
            with guard(comm, "writing the checkpoint of the model returned"):  # rank 0's failure stops all
                if claim and history.epochs and not history.interrupted and not written:
                    _write_checkpoint(claim, model, optimizer, history, run, extra)
        except GpubpError as exc:  # a CheckpointError, or with comm every rank's RankFailure of it
            raise _stopped(exc, model, history, keeper, "training is done") from None
        steps.running = steps.pending = False
    return history


def _write_checkpoint(claim, model, optimizer, history, run, extra):
    """``save_training`` to ``claim``'s path, marked as this run's, holding the path's lock from the
    check to the write; a checkpoint another run wrote there meanwhile is kept: CheckpointError, the
    run stops. Whatever stops the write (a full disk, a folder gone or made read-only, no memory
    left) is one CheckpointError saying what the path still holds."""
    path = claim.path
    try:
        with claim.writing() as taken:
            if not taken:
                save_training(path, model, optimizer, history, *run, **{**(extra or {}), "writer": claim.token})
    except (GpubpError, MemoryError, OSError) as exc:
        raise CheckpointError(f"fit: cannot write the checkpoint of epoch {history.epochs} to {path} "
                              f"({describe(exc)}); {held_at(path)}") from None
    if taken:
        claim.stopped = True
        raise CheckpointError(f"{claim.name}: {taken}; this run stops before its checkpoint of epoch {history.epochs} "
                              f"would replace it (give each run its own path)")


def _stopped(exc, model, history, keeper, what):
    """The error ``exc`` that stopped fit, with the ``history`` of the whole epochs the model holds
    (an epoch cut short was rolled back), after restore_best put its epoch back: an out-of-memory
    error becomes gpubp's OutOfMemoryError, and gpubp's own errors say what the model holds; an
    OSError (a callback's own file) keeps its type and message, so ``except OSError`` still catches it."""
    best = keeper is not None and keeper.restore(model, history)
    held = f"{what}: the model holds {history.epochs} whole epoch(s)" + \
        (f", with the weights of the best, epoch {history.best_epoch} (restore_best)" if best else "")
    if isinstance(exc, MemoryError) and type(exc) is not OutOfMemoryError:
        exc = OutOfMemoryError(f"fit: out of memory ({describe(exc)})")
    if type(exc) in (GpubpError, CheckpointError, OutOfMemoryError, InvalidValueError):
        exc = type(exc)(f"{exc}; {held}")
    exc.history = history
    return exc
