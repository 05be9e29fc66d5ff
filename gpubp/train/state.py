"""Nothing non-finite leaves fit: after every epoch the parameters, float buffers (BatchNorm's
running statistics) and the optimizer's slots are checked (one device sync), and a NaN/Inf
anywhere restores the state of the start of that epoch (itself checked) and raises
NumericalError; ``restore_best`` keeps the best epoch. Both keep the same snapshot: parameters,
buffers, the optimizer's step count and slots."""
from __future__ import annotations

import math
import warnings

import numpy as np

from ..errors import GpubpWarning, NumericalError
from ..history import PER_EPOCH


def _nonfinite(model, optimizer=None) -> list:
    """Names of the parameters, float buffers and optimizer slots (if an optimizer is given)
    holding NaN/Inf (one device sync for all)."""
    arrays = {f"parameter {k}": v for k, v in model.parameters().items()}
    arrays.update({f"buffer {k}": v for k, v in model.buffers().items() if v.dtype.kind == "f"})
    if optimizer is not None:
        arrays.update({f"{type(optimizer).__name__} slot {name}.{s}": a
                       for name, st in optimizer.state.items() for s, a in st.items()})
    if not arrays:
        return []
    xp = model.backend.xp
    with model.backend.activate():
        finite = model.backend.to_numpy(xp.stack([xp.isfinite(a).all() for a in arrays.values()]))
    return [name for name, ok in zip(arrays, finite) if not ok]


def _refuse_nonfinite_start(model, optimizer):
    bad = _nonfinite(model, optimizer)
    if bad:
        raise NumericalError(f"fit: the model or optimizer holds NaN/Inf before training ({', '.join(bad)}); "
                             f"reload a good checkpoint or redraw the parameters")


def _refuse_nonfinite_model(model, what):
    """evaluate/predict: a model holding NaN/Inf would answer NaN for every sample."""
    bad = _nonfinite(model)
    if bad:
        raise NumericalError(f"{what}: the model holds NaN/Inf ({', '.join(bad)}), so every output would be NaN; "
                             f"reload a good checkpoint or retrain")


def _refuse_nonfinite_end(model, optimizer, snapshot, epoch, cause=None, hint=""):
    """NaN/Inf in the model or optimizer refused, the epoch's start restored: said as from the training
    (``hint`` added to its cures), or as ``cause`` where only that can have written it (a callback)."""
    bad = _nonfinite(model, optimizer)
    if bad:
        _restore(model, optimizer, snapshot)
        said = f"{cause} in epoch {epoch + 1} ({', '.join(bad)})" if cause else \
            f"training produced NaN/Inf in epoch {epoch + 1} although the loss stayed finite ({', '.join(bad)})"
        raise NumericalError(f"{said}; parameters and optimizer state were restored to the start of that epoch"
                             + ("" if cause else f" (lower the learning rate, or scale the inputs{hint})"))


def _written_by(callbacks, hook) -> str | None:
    """What fit says of NaN/Inf found in the model after ``hook``'s callbacks ran (None: none has it)."""
    if any(callable(getattr(cb, hook, None)) for cb in callbacks):
        return f"an {hook} callback wrote NaN/Inf into the model"
    return None


class _BestKeeper:
    """fit(restore_best=True): a host snapshot of the best epoch so far (the criterion of
    ``patience``), put back by ``restore``."""

    def __init__(self, optimizer):
        self.optimizer, self.value, self.epoch, self.state = optimizer, math.inf, None, None

    def resumed(self, model, history, path):
        """A resumed run's best so far is the saved run's (the epoch an uninterrupted run would put
        back unless a later one beats it): its value and epoch from the saved history, its state
        from the checkpoint when that holds it (the epoch it was written at, or the best epoch the
        saved run's restore_best put back); else a GpubpWarning says it cannot be put back."""
        watched = history.watched()
        if not watched:
            return
        best, held = int(np.argmin(watched)), (history.best_epoch or history.epochs) - 1
        self.value, self.epoch = watched[best], best
        if best == held:
            self.state = _snapshot(model, self.optimizer, lambda a: model.backend.to_numpy(a).copy())
            return
        warnings.warn(f"fit: restore_best: the best epoch so far, {best + 1}, is not in resume_from={path} (it "
                      f"holds epoch {held + 1}), so it cannot be put back: unless a later epoch is better, the run "
                      f"ends on its last epoch, where an uninterrupted one would end on epoch {best + 1}",
                      GpubpWarning, stacklevel=4)

    def on_epoch_end(self, epoch, model, history):
        # judged against the epochs before by today's criterion (a run resumed with validation data: not the loss);
        # the snapshot first: a Ctrl-C while it is taken keeps the old best whole
        *before, value = history.watched()
        if value < min(before, default=math.inf):
            state = _snapshot(model, self.optimizer, lambda a: model.backend.to_numpy(a).copy())
            self.value, self.epoch, self.state = value, epoch, state

    def restore(self, model, history) -> bool:
        """Put the best epoch back (True), or do nothing when no epoch ran (False)."""
        if self.state is None:
            return False
        _restore(model, self.optimizer, self.state)
        history.best_epoch = self.epoch + 1
        return True


def _snapshot(model, optimizer, copy=lambda a: a.copy()):
    """Copies (on the device, or wherever ``copy`` puts them) of the parameters, the buffers and
    the optimizer's step count and slots."""
    return ({k: copy(v) for k, v in model.parameters().items()}, {k: copy(v) for k, v in model.buffers().items()},
            optimizer.t, {n: {s: copy(a) for s, a in st.items()} for n, st in optimizer.state.items()})


def _restore(model, optimizer, snapshot):
    """Put a snapshot back: parameters and buffers in place, the optimizer's slots as copies."""
    params, buffers, optimizer.t, state = snapshot
    model.load_parameters(params)
    model.load_buffers(buffers)
    asarray = model.backend.asarray
    optimizer.state = {n: {s: asarray(a) for s, a in st.items()} for n, st in state.items()}


def _marks(history) -> dict:
    """The length of each per-epoch list of ``history`` (taken at an epoch's start, for ``_truncate``)."""
    return {name: len(getattr(history, name)) for name in PER_EPOCH}


def _truncate(history, marks):
    """Drop the records made since ``marks`` (an epoch that did not end whole)."""
    for name, n in marks.items():
        del getattr(history, name)[n:]


def _roll_back(model, optimizer, history, snapshot, marks):
    """An epoch that did not end whole (``marks`` is not None) is undone: the model and optimizer
    back to its start (``snapshot``), its records dropped, so the history and the model agree."""
    if marks is not None:
        _restore(model, optimizer, snapshot)
        _truncate(history, marks)
