"""One ``--save``, one run: a checkpoint that another run writes at this run's ``--save`` while it
trains (two runs given the same path) is kept, and this run's model goes beside it
(``<name>.rescued.npz``), where the last run to finish replaced the other's model unsaid. One
``--log``, one run: an epoch log that another run writes meanwhile is left to it (``LogClaim``),
where the two runs' lines were mixed in one file, a run's first line replacing the other's.

Each run marks the checkpoints it writes with a token of its own (``extra["writer"]``); before a
write, ``--save`` must hold nothing, what it held when the run checked it (the ``--resume``
checkpoint continued in place, a file ``--overwrite`` replaces), or this run's own checkpoint.
The check is made just before each write (a few milliseconds before it: two runs that finish in
the same instant are not told apart; a lock would be)."""
from __future__ import annotations

import os
import warnings

from .. import checkpoint
from ..errors import CheckpointError, GpubpError, GpubpWarning


def signature(path):
    """(inode, modification time, size) of the file at ``path``, None when there is none: a write
    by anyone changes it."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


class Claim:
    """What ``--save`` held when this run checked it, and the token its own checkpoints carry. As a
    fit callback (``--checkpoint-every``), it stops the run before fit replaces a checkpoint of
    another run: at the end of an epoch that fit writes, before the write (a stat when nothing changed)."""

    def __init__(self, path, every=None, epochs=None, patience=None):
        self.path, self.token = path, os.urandom(8).hex()
        self.found, self.seen = self._state(), signature(path)
        self.every, self.epochs, self.patience = every, epochs, patience
        self.stopped = False  # the run was stopped by this: said once

    def _state(self):
        """None when no file is at the path; else its metadata, or (for a file that is no checkpoint
        or cannot be read) its signature."""
        if not os.path.exists(self.path):
            return None
        try:
            return checkpoint.read_metadata(self.path)
        except (GpubpError, OSError):
            return ("unreadable", signature(self.path))

    def taken(self) -> str | None:
        """What another run left at the path since this run checked it, in words; None when it is free."""
        now = signature(self.path)
        if now is None or now == self.seen:  # nothing there to lose, or nothing new
            return None
        state = self._state()
        mine = isinstance(state, dict) and (state.get("extra") or {}).get("writer") == self.token
        if mine or state == self.found:
            self.seen = now
            return None
        if not isinstance(state, dict):
            return f"{self.path} was replaced by a file that is not a gpubp checkpoint while this run trained; " \
                   f"it is kept"
        done, created = (state.get("extra") or {}).get("epochs_done"), state.get("created")
        what = "a model" if done is None else f"a checkpoint of {done} epoch(s)"
        return f"another run wrote {self.path} while this one trained ({what}, saved {created}); it is kept"

    def on_epoch_end(self, epoch, model, history):
        """Before fit writes this epoch's checkpoint: every ``every`` epochs, at the last, and at any
        epoch with ``patience`` (which may end the run there, and fit then writes it at once)."""
        due = (epoch + 1) % self.every == 0 or epoch + 1 == self.epochs or self.patience
        taken = due and self.taken()
        if taken:
            self.stopped = True
            raise CheckpointError(f"--save: {taken}; this run stops before its checkpoint of epoch {epoch + 1} "
                                  f"would replace it (give each run its own --save)")


class LogClaim:
    """``log`` (an EpochLog) as a fit callback that writes its line only while the file holds what
    this run left there (what was there when it started, then its own lines): a log another run
    writes meanwhile is left to that run, said once in a warning, and this run goes on without it
    (its epochs are in the history that --save keeps)."""

    def __init__(self, log, seen):
        self.log, self.seen, self.left = log, seen, False  # ``seen``: the file's signature when it was checked

    def on_epoch_end(self, epoch, model, history):
        if self.left:
            return
        if signature(self.log.path) != self.seen:
            self.left = True
            warnings.warn(f"--log {self.log.path}: another run wrote it while this one trained; it is left to that "
                          f"run, and this run logs no more lines from epoch {epoch + 1} on (give each run its own "
                          f"--log)", GpubpWarning)
            return
        self.log.on_epoch_end(epoch, model, history)
        self.seen = signature(self.log.path)
