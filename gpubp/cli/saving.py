"""Where ``gpubp train`` keeps its model: --save written (after a Ctrl-C only where it is the better
checkpoint), rescued beside a --save that cannot hold it under a name no file has, and what a run that
failed keeps of its whole epochs.
"""
from __future__ import annotations

import contextlib
import itertools
import os

from ..checkpoint.atomic import describe, locked
from ..errors import GpubpError
from ..train import save_training
from ..train.interrupts import deferred
from ..train.resume import held_at
from .resume import ahead_of


def kept_of(exc, args, model, optimizer, name, extras, resumed, root, claim=None):
    """``exc``, fit's error, saying what is kept of the run: the whole epochs it trained (its
    ``history``; none when it stopped before) are written to --save first (``save_run``: else beside it)."""
    history, done = getattr(exc, "history", None), resumed.get("epochs_done") or 0
    if history is None or not root or history.epochs <= done:
        return exc  # nothing trained that is not already on disk (the --resume checkpoint)
    if not args.save:
        kept = f"no --save: the {history.epochs - done} epoch(s) trained are not kept"
    else:
        try:
            kept = save_run(args, model, optimizer, history, name, extras, resumed, claim)
        except GpubpError as failed:
            kept = str(failed)
    kept = GpubpError(f"{exc}; {kept}")
    kept.everywhere = getattr(exc, "everywhere", False)  # every rank stopped alike: no MPI_Abort needed
    return kept


def save_run(args, model, optimizer, history, name, extras, resumed, claim=None) -> str:
    """Write --save; after Ctrl-C only where no file is yet, or where the file is still the
    checkpoint this run resumed from (``resumed``: its extras) and the run has done more whole
    epochs: the model then holds part of an epoch, and a checkpoint already there (an earlier
    run, or --checkpoint-every's last write at an epoch's end) is the better one to keep.
    When --save cannot be written (a full disk, its folder gone, no memory left) the model is
    written beside it, else in the current folder, as ``<name>.rescued.npz`` (a name no file has),
    and a GpubpError says where, or that the run's epochs are lost and what --save keeps. A
    checkpoint that another run wrote at --save while this one trained (``claim``) is kept: the
    model goes beside it as well. A Ctrl-C (or SIGTERM) while the checkpoint is written waits for
    its end, then the saved line is printed and the run stops as interrupted (a second Ctrl-C stops
    at once, the file already there kept): it threw away the whole run's model."""
    if history.interrupted and os.path.exists(args.save) and not ahead_of(args, history, resumed):
        return f"not saved: interrupted in epoch {history.epochs + 1}; {args.save} keeps what it held"
    ctrl_c = []

    def write(path):
        with deferred(running=True) as steps:
            path = save_training(path, model, optimizer, history, args.seed,
                                 {"batch_size": args.batch_size, "shuffle": True}, dataset=name, **extras,
                                 **({"writer": claim.token} if claim else {}))
            steps.running = False
            ctrl_c.extend([True] if steps.pending else [])
        return path
    try:
        with claim.writing() if claim else contextlib.nullcontext() as taken:  # its lock held from check to write
            path = None if taken else write(claim.path if claim else args.save)
    except (GpubpError, MemoryError, OSError) as exc:
        raise GpubpError(f"--save {args.save}: {describe(exc)}; {_rescue(write, args.save, history.epochs)}") from None
    if taken:  # said already when it stopped the run
        raise GpubpError(("" if claim.stopped else f"--save: {taken}; ") + _rescue(write, args.save, history.epochs))
    line = f"saved: {path}" + (f" (interrupted: {history.epochs} whole epoch(s))" if history.interrupted else "")
    if ctrl_c:  # came while it was written
        print(line)
        raise KeyboardInterrupt
    return line


def _rescue(write, save, epochs) -> str:
    """Write the model that --save could not hold beside it, else in the current folder, under a
    name no file has (nothing is replaced); say where, or what is lost."""
    stem = os.fsdecode(os.fsencode(os.path.splitext(os.path.basename(save))[0])[:200])  # + .rescued-k.npz: fits
    failed = None
    for folder in dict.fromkeys((os.path.dirname(os.path.abspath(save)), os.getcwd())):
        try:
            return f"the model ({epochs} epoch(s)) is saved instead at {_write_new(write, folder, stem)}; give it " \
                   f"to --resume to continue"
        except (GpubpError, MemoryError, OSError) as exc:
            failed = exc
    return f"nor could it be written beside it or in the current folder ({describe(failed)}): the model " \
           f"({epochs} epoch(s)) is lost; {held_at(save)}"


def _write_new(write, folder, stem) -> str:
    """``write(path)`` at the first ``<stem>.rescued[-k].npz`` in ``folder`` that no file has, made sure
    of under the name's lock: two runs rescued at once take two names."""
    for k in itertools.count():
        path = os.path.join(folder, f"{stem}.rescued{f'-{k}' if k else ''}.npz")
        if not os.path.lexists(path):
            with locked(path):
                if not os.path.lexists(path):
                    return write(path)
