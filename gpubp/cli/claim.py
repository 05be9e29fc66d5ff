"""One ``--save``, one run: a checkpoint that another run writes at this run's ``--save`` while it
trains (two runs given the same path) is kept, and this run's model goes beside it
(``<name>.rescued.npz``), where the last run to finish replaced the other's model unsaid.

Each run marks the checkpoints it writes with a token of its own (``extra["writer"]``); before a
write, ``--save`` must hold nothing, what it held when the run checked it (the ``--resume``
checkpoint continued in place, a file ``--overwrite`` replaces), or this run's own checkpoint.
The check is made just before each write (a few milliseconds before it: two runs that finish in
the same instant are not told apart; a lock would be)."""
from __future__ import annotations

import os

from .. import checkpoint
from ..errors import CheckpointError, GpubpError


class Claim:
    """What ``--save`` held when this run checked it, and the token its own checkpoints carry. As a
    fit callback (``--checkpoint-every``), it stops the run before fit replaces a checkpoint of
    another run: at the end of an epoch that fit writes, before the write (a stat when nothing changed)."""

    def __init__(self, path, every=None, epochs=None, patience=None):
        self.path, self.token = path, os.urandom(8).hex()
        self.found, self.seen = self._state(), self._signature()
        self.every, self.epochs, self.patience = every, epochs, patience
        self.stopped = False  # the run was stopped by this: said once

    def _signature(self):
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _state(self):
        """None when no file is at the path; else its metadata, or (for a file that is no checkpoint
        or cannot be read) its signature."""
        if not os.path.exists(self.path):
            return None
        try:
            return checkpoint.read_metadata(self.path)
        except (GpubpError, OSError):
            return ("unreadable", self._signature())

    def taken(self) -> str | None:
        """What another run left at the path since this run checked it, in words; None when it is free."""
        signature = self._signature()
        if signature is None or signature == self.seen:  # nothing there to lose, or nothing new
            return None
        state = self._state()
        mine = isinstance(state, dict) and (state.get("extra") or {}).get("writer") == self.token
        if mine or state == self.found:
            self.seen = signature
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
