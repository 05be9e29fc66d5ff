"""One checkpoint path, one run: a checkpoint that another run writes at this run's path while it
trains (two runs given the same path) is kept, where the last run to finish replaced the other's
model unsaid. ``fit(checkpoint_path=...)`` and ``gpubp train --save`` claim their path this way.

Each run marks the checkpoints it writes with a token of its own (``extra["writer"]``). A write
may replace what the path held when the run checked it (nothing; the checkpoint it resumes in
place; a file ``overwrite`` replaces) or this run's own checkpoint, nothing else; the check and
the write hold the path's lock (``atomic.locked``), so two runs that finish in the same instant
take turns and the second finds the first's checkpoint."""
from __future__ import annotations

import contextlib
import os
import warnings

from .._checks import writable_target
from ..errors import GpubpError, GpubpWarning, InvalidValueError
from . import file_name, read_metadata
from .archive import user_path
from .atomic import locked

UNLOCKED = []  # said once a process: writes here cannot be locked


def signature(path):
    """(inode, modification time, size) of the file at ``path``, None when there is none: a write
    by anyone changes it."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


class Claim:
    """What ``path`` held when this run checked it, and the token its own checkpoints carry;
    ``name`` is how messages call the path (``"--save"``, ``"fit: checkpoint_path"``)."""

    def __init__(self, path, name="fit: checkpoint_path"):
        self.path, self.name, self.token = os.path.abspath(file_name(name, user_path(path))), name, os.urandom(8).hex()
        folder = os.path.dirname(writable_target(name, self.path))
        try:
            with locked(self.path):  # read whole, not while another writes it; the folder takes new files
                self.found, self.seen = self._state(), signature(self.path)
        except OSError as exc:  # e.g. /proc or /sys, which root's os.access calls writable
            raise InvalidValueError(f"{name}: no file can be made in {folder} ({exc.strerror or exc}); give a "
                                    f"path in a folder that takes new files") from None
        self.stopped = False  # set by a writer that stopped its run at another's checkpoint (said once)

    def _state(self):
        """None when no file is at the path; else its metadata, or (for a file that is no checkpoint
        or cannot be read) its signature."""
        if not os.path.exists(self.path):
            return None
        try:
            return read_metadata(self.path)
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

    @contextlib.contextmanager
    def writing(self):
        """The path's lock held for a write of this run: yields ``taken()`` (another run's checkpoint
        there, in words: not to be replaced) or None (this run's to write); after a write in the
        block, the file there is this run's. Where writes cannot be locked, a GpubpWarning says
        once that the check alone stands (two runs finishing in the same instant are not told apart)."""
        writable_target(self.name, self.path)  # said as the writer says it, not as the lock file's failure
        with locked(self.path) as held:
            if not held and not UNLOCKED:
                UNLOCKED.append(self.path)
                warnings.warn(f"{self.name}: {self.path} cannot be locked here (no fcntl, or its file system "
                              f"refuses locks): two runs that write it in the same instant are not told apart; "
                              f"give each run its own path", GpubpWarning, stacklevel=4)
            taken = self.taken()
            yield taken
            if not taken:
                self.seen = signature(self.path)
