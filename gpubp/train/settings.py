"""fit's run settings: what every rank of a data-parallel run must share, the learning rate a
schedule gives each epoch (held to the model's dtype), and when a run stops early (tol, patience).
"""
from __future__ import annotations

import numpy as np

from .. import _checks
from ..errors import InvalidValueError


def _run_settings(loss, epochs, batch_size, shuffle, seed, tol, patience, restore_best, every, sched, start,
                  history) -> dict:
    """What every rank of a data-parallel fit must share beyond its model, optimizer and data: the
    settings that decide the batches, the steps and when the run stops (a rank with another seed
    trains on other samples, one with more epochs waits for the others in a collective, one with
    another schedule updates by other rates), and the epochs it resumes, whose losses decide
    ``patience``. A schedule is compared by its rate for each epoch still to run."""
    return {"loss": repr(loss), "epochs": epochs, "batch_size": batch_size, "shuffle": shuffle,
            "seed": 0 if seed is None else seed, "tol": tol, "patience": patience, "restore_best": restore_best,
            "checkpoint_every": every,
            "lr per epoch": None if sched is None else [_scheduled_lr(sched, e) for e in range(start, epochs)],
            "epochs resumed": start,  # NaN (an epoch without validation) as None: equal on every rank
            "resumed losses": [[None if v != v else v for v in values]
                               for values in (history.loss, history.val_loss, history.val_metric)]}


def _lr_fits(lr, model, which) -> float:
    """``lr`` when it is a finite number in the model's dtype (the update kernels read it there), else refused:
    1e308 is inf in float32, and every parameter would be NaN after the first step."""
    dtype = np.dtype(model.backend.dtype)
    if lr > float(np.finfo(dtype).max):
        raise InvalidValueError(f"fit: lr={lr:g}{which} is beyond {dtype}'s largest number "
                                f"({float(np.finfo(dtype).max):.4g}), inf where the update reads it; give a smaller lr")
    return lr


def _scheduled_lr(sched, epoch) -> float:
    return _checks.number(f"fit: the schedule's lr for epoch {epoch}", sched(epoch), low=0)


def _stop_reason(history, tol, patience):
    if tol is not None and len(history.loss) >= 2:
        prev, last = history.loss[-2], history.loss[-1]
        if abs(prev - last) <= tol * max(abs(prev), 1e-12):
            return f"converged: loss changed by less than {tol:g} (relative)"
    if patience is not None:
        watched = history.watched()
        best = int(np.argmin(watched))
        if len(watched) - 1 - best >= patience:
            return f"no improvement for {patience} epochs (best at epoch {best + 1})"
    return None
