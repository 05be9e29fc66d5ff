"""fit's own arguments checked before any work, beyond its data and checkpointing (inputs.py):
cuda_graph's needs, the run's learning rate and schedule, and what a refused run leaves (the model
and optimizer as they were given, ``_AsGiven``).
"""
from __future__ import annotations

import numpy as np

from .. import _checks
from ..errors import InvalidValueError
from ..plan import graph_problem, plan_problem
from ..schedules import get_schedule
from .settings import _lr_fits, _scheduled_lr


class _AsGiven:
    """Around fit's checks: a run refused there (by this rank, or with comm by another) leaves the
    model and an optimizer instance as they were given, though ``resume_from`` has loaded its
    checkpoint into them by then (with comm, on the ranks that could read it: the ranks' models
    would differ, and none holds what the caller gave). Copies the parameters and buffers once."""

    def __init__(self, model, optimizer, resume_from):
        self.model, self.optimizer, self.given = model, optimizer, None
        self.lr = getattr(optimizer, "lr", None)  # fit's lr sets it before the last checks
        if resume_from is not None:
            self.given = ({k: v.copy() for k, v in model.parameters().items()},
                          {k: v.copy() for k, v in model.buffers().items()},
                          (optimizer.t, optimizer.state) if hasattr(optimizer, "state") else None)

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is not None and self.lr is not None:
            self.optimizer.lr = self.lr
        if exc is not None and self.given is not None:
            params, buffers, opt = self.given
            self.model.load_parameters(params)
            self.model.load_buffers(buffers)
            if opt is not None:
                self.optimizer.t, self.optimizer.state = opt
        return False


def _check_cuda_graph(cuda_graph, model, plan, comm):
    if not _checks.flag("fit: cuda_graph", cuda_graph):
        return
    problem = ("it needs plan=True" if plan is not True else
               "a graph holds one process's whole step, so not with comm" if comm is not None else
               f"{model.backend.device} runs NumPy: a CUDA graph needs a CUDA device (--device gpu)"
               if not hasattr(model.backend, "capture") else plan_problem(model) or graph_problem(model))
    if problem:
        raise InvalidValueError(f"fit: cuda_graph: {problem}")


def _run_lr(model, optimizer, lr, schedule, epochs, history, start):
    """The run's schedule (None without one), its rates checked: ``lr`` (checked, or None) set on
    ``optimizer`` (an instance's or a resumed one's too); the schedule starting from the run's first
    rate, lr_0 = lr, else ``history``'s first (resuming), else the optimizer's; a callable schedule
    whose lr_0 is not ``lr`` refused (it sets every rate); the rate of epoch ``start`` one the
    model's dtype holds (``_lr_fits``)."""
    if lr is not None:  # also overrides the lr of an optimizer instance or a resumed one
        optimizer.lr = lr
    # the schedule starts from the run's initial lr, also when resuming
    first_lr = lr if lr is not None else (history.lr[0] if history.lr else optimizer.lr)
    sched = get_schedule(schedule, first_lr, epochs) if schedule is not None else None
    if lr is not None and callable(schedule):  # the schedule sets every rate: an lr it does not start at is ignored
        start_lr = _scheduled_lr(sched, 0)
        if not np.isclose(start_lr, lr, rtol=1e-6, atol=0):
            raise InvalidValueError(f"fit: lr={lr:g} but the schedule {schedule!r:.60} starts at {start_lr:g}, "
                                    f"and it sets every epoch's rate: leave lr out, or start the schedule at it")
    if sched is None:
        _checks.number("fit: the optimizer's lr", optimizer.lr, low=0, low_open=True)
    _lr_fits(optimizer.lr if sched is None else _scheduled_lr(sched, start), model, "")
    return sched
