"""Ctrl-C between training steps, never inside one.

A step (zero_grad, forward, loss, backward, update) changes many arrays: the parameters, the
optimizer's slots and step count ``t``, Dropout's step counter, BatchNorm's running statistics.
A KeyboardInterrupt raised in the middle would leave some of them moved for a batch whose update
never happened. Within ``fit``, ``deferred()`` installs a SIGINT handler that, while a step runs
(``steps.running`` set), only notes the Ctrl-C; ``steps.end()`` raises it at the step boundary.
A second Ctrl-C while one is pending raises at once (the user insists). Per step this costs an
attribute set and cleared, no ``signal.signal`` call::

    with deferred() as steps:
        for batch in batches:
            steps.running = True
            ...                      # one whole step
            steps.end()              # KeyboardInterrupt here, if Ctrl-C came during the step

With a communicator (``deferred(comm)``: every rank of a data-parallel fit) a Ctrl-C is only noted
(``noted``), whenever it comes: the next step's ``comm.guard`` tells every rank whether any rank
noted one, and if so every rank stops at that step's end (``agree``), together; a Ctrl-C that
reached one rank alone no longer leaves the others waiting in the next collective. A second
Ctrl-C before that aborts every rank (``comm.abort``). Where no such handler is in (fit's argument
checks, before its steps), ``comm.guard`` defers a Ctrl-C to the end of its section itself, and
then every rank raises KeyboardInterrupt (``gpubp.distributed.faults``).

The handler is installed only in the main thread and only where SIGINT's handler is Python's own
(``signal.default_int_handler``) or an outer fit's: a fit run inside another's callback defers to
its own steps, so a Ctrl-C there stops the inner fit at its step's end (never mid-step). A handler
someone else set (a framework, a user's) is left alone, and the previous handler is always put back.
"""
from __future__ import annotations

import contextlib
import signal
import threading


class Steps:
    """The step in progress (``running``) and a Ctrl-C deferred until it ends (``pending``); with
    ``comm``, a Ctrl-C this rank saw and the ranks have not yet agreed on (``noted``)."""

    __slots__ = ("running", "pending", "noted", "comm")

    def __init__(self, comm=None):
        self.running = self.pending = self.noted = False
        self.comm = comm

    def agree(self):
        """A rank noted a Ctrl-C (``comm.guard`` found it): every rank stops at this step's end."""
        self.noted, self.pending = False, True

    def end(self):
        """The step is done: a Ctrl-C that came during it is raised now."""
        self.running = False
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt

    def _on_sigint(self, signum, frame):
        if self.comm is not None:  # the ranks stop together, at a step they agree on
            if self.noted or self.pending:
                self.comm.abort("a second Ctrl-C before the ranks could stop together")
            self.noted = True
            return
        if self.running and not self.pending:
            self.pending = True  # finish the step first
            return
        self.pending = False
        raise KeyboardInterrupt


@contextlib.contextmanager
def deferred(running=False, comm=None):
    """A :class:`Steps` whose Ctrl-C waits for the step's end, while the block runs (see the module);
    ``running``: the block is one step from its start (a Ctrl-C the moment the handler is in waits too);
    ``comm``: the ranks of a data-parallel fit, which stop together."""
    steps = Steps(comm)
    steps.running = running
    previous = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
    if not (previous is signal.default_int_handler or isinstance(getattr(previous, "__self__", None), Steps)):
        yield steps  # the flags are set and cleared as ever; nothing defers
        return
    try:  # installed inside the try: a Ctrl-C the moment it is in still puts ``previous`` back
        signal.signal(signal.SIGINT, steps._on_sigint)
        yield steps
    finally:
        signal.signal(signal.SIGINT, previous)
