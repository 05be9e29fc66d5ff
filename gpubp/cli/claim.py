"""One ``--log``, one run: an epoch log that another run writes meanwhile is left to it
(``LogClaim``), where the two runs' lines were mixed in one file, a run's first line replacing the
other's; the check and the line are made under the file's lock (``checkpoint.atomic.locked``), so
two runs writing at the same instant are told apart too. (One ``--save``, one run:
``gpubp.checkpoint.claim``, which fit uses too.)"""
from __future__ import annotations

import warnings

from ..checkpoint.atomic import locked
from ..checkpoint.claim import signature
from ..errors import GpubpWarning


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
        with locked(self.log.path):
            if signature(self.log.path) == self.seen:
                self.log.on_epoch_end(epoch, model, history)
                self.seen = signature(self.log.path)
                return
        self.left = True
        warnings.warn(f"--log {self.log.path}: another run wrote it while this one trained; it is left to that "
                      f"run, and this run logs no more lines from epoch {epoch + 1} on (give each run its own "
                      f"--log)", GpubpWarning)
