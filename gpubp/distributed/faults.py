"""When a rank fails: ``guard`` turns an exception on one rank into the same ``RankFailure`` on
every rank (and a model changed on one rank alone into the same ``MismatchError``), ``abort`` ends
every rank, and ``install_abort_hook`` aborts them all when an exception escapes one rank, instead
of leaving the others waiting in a collective. ``install_leave_notice`` has a rank that ends its
program tell the others, so that a rank waiting for it in a guard stops instead of waiting for ever."""
from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import signal
import sys
import threading
import time
import weakref

import numpy as np

from ..errors import GpubpError, StateError
from .consistency import difference
from .errors import DistributedError, MismatchError, RankFailure
from .transport import MPI

_TOKENS = weakref.WeakKeyDictionary()  # model -> ((generation, backend), token of its layout)
_LEFT = 17  # the tag of a leave notice, sent on a communicator of its own (comm.leave)


@contextlib.contextmanager
def guard(comm, what, steps=None, model=None):
    """``Communicator.guard``: at the end of the section every rank of ``comm`` learns whether
    any rank raised, and if one did every rank raises the same RankFailure; with ``steps`` (fit's
    ``interrupts.Steps``), also whether any rank noted a Ctrl-C, and if one did every rank stops
    at the end of this step. An error raised on every rank alike (``everywhere``: a RankFailure of
    a guard inside this one, a MismatchError) passes as it is: every rank is here with it.

    Every rank also learns whether any rank closed ``comm`` (then every rank raises the same
    StateError) and, with ``model``, whether every rank's model has the same layout (``layout``:
    layer classes, devices kinds, dtypes, parameter shapes), else every rank raises the same
    MismatchError: fit's step guard runs before the step's gradient all-reduce, so a model that a
    callback changed on one rank is refused on every rank before a collective on its gradients.
    Outside fit's steps (no ``steps``, SIGINT's handler Python's own), a Ctrl-C during the section
    waits for its end, and then every rank raises KeyboardInterrupt."""
    deferring = steps is None and _default_sigint()
    with _deferred(comm) if deferring else contextlib.nullcontext() as noting:
        try:
            yield
        except KeyboardInterrupt:  # the section was cut short here: every rank stops at its end
            _agree(comm, what, None, steps, model, interrupted=True)
            raise
        except Exception as exc:
            if not getattr(exc, "everywhere", False):
                _agree(comm, what, exc, steps, model, noting)
            raise
        else:
            _agree(comm, what, None, steps, model, noting)


def _agree(comm, what, exc, steps, model, noting=None, interrupted=False):
    """One all-reduce (MAX) of ``[failed, noted, interrupted, closed, token, -token]``: from the
    max and the max of the negation every rank learns whether the layout tokens differ."""
    try:  # a model this rank cannot describe (junk put in its layers) is this rank's failure
        token = 0 if model is None or exc is not None else layout_token(model)
    except Exception as err:
        exc, token = err, 0
    if noting is not None:
        noting.agreed = True  # a Ctrl-C from here on comes too late to be told: it aborts every rank
    noted = steps is not None and steps.noted
    interrupted = interrupted or (noting is not None and noting.noted)
    flags = np.array([exc is not None, noted, interrupted, comm.closed, token, -token], dtype=np.int64)
    _wait(comm, comm.mpi.Iallreduce(MPI.IN_PLACE, flags, op=MPI.MAX), what)
    failed, noted, interrupted, closed, high, low = flags.tolist()
    if noted and steps is not None:
        steps.agree()
    if failed:
        refuse_failure(comm, what, exc)
    if closed:
        _refuse_closed(comm, what)
    if high != -low:
        _refuse_layouts(comm, what, model)
    if interrupted:
        raise KeyboardInterrupt


def _wait(comm, request, what, grace=2.0):
    """Wait for ``request`` (a guard's all-reduce, which every rank must join). A rank that ended its
    program (its leave notice, kept in ``comm.gone``) never joins: once ``grace`` seconds have passed
    since it was known gone (time for a collective that it did finish to finish here too), this rank
    stops with a DistributedError, which ends every rank (it is this rank's alone: the abort hook, or
    the command, aborts them)."""
    leave, status, polls, since = getattr(comm, "leave", None), MPI.Status(), 0, None
    gone = getattr(comm, "gone", set())
    while not request.Test():
        if leave is not None and leave.Iprobe(source=MPI.ANY_SOURCE, tag=_LEFT, status=status):
            leave.Recv(np.zeros(1, np.int8), source=status.Get_source(), tag=_LEFT)
            gone = comm.gone = gone | {status.Get_source()}
        if gone and since is None:
            since = time.monotonic()
        if since is not None and time.monotonic() - since > grace:
            raise DistributedError(f"rank {min(gone)} of {comm.size} ended its program while rank {comm.rank} "
                                   f"waited for it during {what}: every rank must call fit (and every collective) "
                                   f"alike, not some ranks only; every rank is ended")
        polls += 1
        time.sleep(0 if polls < 2000 else 0.001)  # a rank a step behind comes soon; one far behind, rarely checked


def install_leave_notice(comm) -> None:
    """When this rank ends, a notice to every other rank on ``comm.leave`` (a communicator of its own):
    a rank still waiting for this one in a guard then stops (``_wait``). Sent once, by whichever comes
    first: the program's end (an exit hook, run before mpi4py finalizes MPI) or the program's own
    ``MPI.Finalize()`` (the delete callback of an attribute of MPI_COMM_SELF, which MPI_Finalize runs
    first, MPI still whole)."""
    comm.leave, note, sent = comm.mpi.Dup(), np.zeros(1, np.int8), []

    def notify(*_):
        if not sent and MPI.Is_initialized() and not MPI.Is_finalized():
            sent.append(True)
            for r in range(comm.size):  # one byte each: sent eagerly; MPI_Finalize needs no receive of it
                if r != comm.rank:
                    comm.leave.Isend(note, dest=r, tag=_LEFT).Free()

    atexit.register(notify)
    MPI.COMM_SELF.Set_attr(MPI.Comm.Create_keyval(delete_fn=notify), note)


def agree_on_call(comm, what, exc, token) -> bool:
    """Before a collective that a rank may refuse: one all-reduce (MAX) of ``[failed, token, -token]``.
    A call refused on any rank (``exc``, this rank's error or None) is refused on every rank alike
    (``refuse_failure``), none left waiting in the collective; returns whether every rank passed the
    same ``token`` (what the collective's buffers must agree in, e.g. their layout)."""
    flags = np.array([exc is not None, token, -token], dtype=np.int64)
    comm.mpi.Allreduce(MPI.IN_PLACE, flags, op=MPI.MAX)
    if flags[0]:
        refuse_failure(comm, what, exc)
    return bool(flags[1] == -flags[2])


def refuse_failure(comm, what, exc):
    """Every rank raises the same error: a RankFailure naming the first rank that failed and what it
    raised, or, where every rank raised the same error (a batch every rank refuses alike), that
    error itself, as one process would raise it."""
    reports = comm.mpi.allgather(None if exc is None else f"{type(exc).__name__}: {exc}")
    failed = [r for r, report in enumerate(reports) if report is not None]
    if len(failed) == comm.size and len(set(reports)) == 1 and isinstance(exc, GpubpError):
        exc.everywhere = True  # every rank is here with it: a guard around this one passes it on
        raise exc
    first = failed[0]
    others = f" (ranks {', '.join(map(str, failed))} failed)" if len(failed) > 1 else ""
    raise RankFailure(f"rank {first} of {comm.size} failed during {what}: {reports[first]}{others}; "
                      f"every rank stopped", first, failed) from exc


def _refuse_closed(comm, what):
    closed = [r for r, c in enumerate(comm.mpi.allgather(comm.closed)) if c]
    which = f"rank {closed[0]}" if len(closed) == 1 else f"ranks {', '.join(map(str, closed))}"
    error = StateError(f"the communicator of {which} of {comm.size} is closed (comm.close()), found after {what}; "
                       f"every rank stopped; make a new one on every rank with gpubp.distributed.mpi.world()")
    error.everywhere = True
    raise error


def _refuse_layouts(comm, what, model):
    everyone = comm.mpi.allgather(None if model is None else layout(model))
    ours = everyone[0]
    ranks = [r for r, theirs in enumerate(everyone) if theirs != ours]
    r = ranks[0]
    fields = [k for k in ("layers", "parameters") if (ours or {}).get(k) != (everyone[r] or {}).get(k)]
    detail = "; ".join(_layout_difference(k, ours[k], everyone[r][k], r) for k in fields) if ours and everyone[r] \
        else f"a model on {'rank 0' if ours else f'rank {r}'} only"
    which = f"rank {r}" if len(ranks) == 1 else f"ranks {', '.join(map(str, ranks))}"
    raise MismatchError(f"the model on {which} of {comm.size} differs from rank 0's at the end of {what} (changed "
                        f"on some ranks only, by a callback?): {detail}; no gradient was summed, every rank stopped: "
                        f"change the model alike on every rank", r, fields or ["model"])


def _layout_difference(key, ours, theirs, r) -> str:
    """``model layer i: ...`` (with the layer counts where they differ) or ``parameter i.name: shapes``."""
    if key == "parameters":
        return difference("parameter", ours, theirs, r)
    counts = f" ({len(ours)} layers on rank 0, {len(theirs)} on rank {r})" if len(ours) != len(theirs) else ""
    return difference("model", ours, theirs, r) + counts


def layout(model) -> dict:
    """What a gradient collective needs alike on every rank: the layers (class, device kind, dtype)
    and the parameters' shapes (of the arrays once drawn): ``{"layers": [...], "parameters": {"i.name": shape}}``."""
    layers, shapes = [], {}
    for i, layer in enumerate(model.layers):
        backend = layer.backend
        layers.append(f"{type(layer).__name__} ({backend.device.split(':')[0]} {backend.dtype.name})")
        drawn = getattr(layer, "parameters_drawn", True)
        arrays = {k: tuple(a.shape) for k, a in layer.params.items()} if drawn else layer.parameter_shapes()
        shapes.update({f"{i}.{k}": tuple(s) for k, s in arrays.items()})
    return {"layers": layers, "parameters": shapes}


def layout_token(model) -> int:
    """A hash in [1, 2**61] of ``layout(model)``, computed anew only when the model's layers or arrays
    were replaced (``Sequential.generation``) or it moved (its backend) since the last call."""
    key = (getattr(model, "generation", None), model.backend)
    kept = _TOKENS.get(model)
    if kept is None or key[0] is None or kept[0] != key:
        digest = hashlib.blake2b(repr(layout(model)).encode(), digest_size=8).digest()
        kept = _TOKENS[model] = (key, (int.from_bytes(digest, "little") >> 3) + 1)
    return kept[1]


def _default_sigint() -> bool:
    """In the main thread (the only one a handler can be set in), SIGINT's handler is Python's own
    (so not a fit's, which defers a Ctrl-C to its steps' guards)."""
    return (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler)


class _Noting:
    """A Ctrl-C during a guarded section: noted; once the ranks have agreed, one more aborts every rank."""

    def __init__(self, comm):
        self.comm, self.noted, self.agreed = comm, False, False

    def __call__(self, signum, frame):
        if self.noted or self.agreed:
            self.comm.abort("a Ctrl-C the ranks could no longer stop together for" if self.agreed else
                            "a second Ctrl-C before the ranks could stop together")
        self.noted = True


@contextlib.contextmanager
def _deferred(comm):
    noting = _Noting(comm)
    try:  # installed inside the try: a Ctrl-C the moment it is in still puts Python's own back
        signal.signal(signal.SIGINT, noting)
        yield noting
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


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
