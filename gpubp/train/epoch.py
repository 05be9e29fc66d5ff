"""One epoch of fit: its batch order (a permutation drawn on the host from ``(seed, epoch)``,
the same on every device and rank), its steps (eager, planned or a replayed CUDA graph; with
a communicator this rank's share of each global batch, the gradients summed over the ranks),
and its record in the history (loss, metric, lr, time), refused when not finite.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import time
import warnings

import numpy as np

from .. import _checks
from ..backend import backend_of
from ..errors import GpubpWarning, InvalidValueError, NumericalError, StateError
from ..losses.base import returned_gradient
from ..nn.share import BatchShare
from ..plan import PlanCache
from .evaluation import _accuracy, _n_correct, _refuse_nonfinite_loss, _refuse_nonfinite_outputs, scored
from .inputs import _mode
from .interrupts import Steps
from .loss_record import LossRecord
from .nonfinite_origin import nonfinite_origin
from .shares import Sums, complete, idle, shared
from .state import _refuse_nonfinite_end, _restore, _written_by


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """The batch order of ``epoch``: a permutation of ``range(n)`` drawn on the host from
    ``(seed, epoch)`` (the same on every device and every rank), or ``range(n)`` unshuffled."""
    n, seed, epoch = (_checks.integer(f"epoch_order: {name}", v, 0) for name, v in (("n", n), ("seed", seed),
                                                                                 ("epoch", epoch)))
    shuffle = _checks.flag("epoch_order: shuffle", shuffle)
    try:
        return np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)
    except (ValueError, MemoryError, OverflowError):  # NumPy's "Maximum allowed size exceeded", or no room
        raise InvalidValueError(f"epoch_order: n={n} samples is more than this machine can hold an order of") from None


def _batches(backend, n, batch_size, shuffle, seed, epoch, comm):
    """``(indices on the device, global batch size, first)`` of each step: the consecutive slices of
    ``epoch_order``, or with ``comm`` this rank's share of each (``global_n`` then counts all ranks,
    and ``first`` is the share's position in the global batch)."""
    if comm is None:
        order = backend.asarray(epoch_order(n, seed, epoch, shuffle))
        return ((order[lo:lo + batch_size], None, 0) for lo in range(0, n, batch_size))
    return ((backend.asarray(idx), global_n, comm.first_of_share(global_n))
            for idx, global_n in comm.local_batches(n, batch_size, seed, epoch, shuffle))


def guard(comm, what, steps=None, model=None):
    """With a communicator, an error on any rank inside the block (a file it cannot read, a bad
    step) stops every rank alike, instead of leaving the others waiting in the next collective;
    with ``steps``, so does a Ctrl-C that one rank noted (``interrupts``), at the step's end; with
    ``model``, so does a model whose layout differs between the ranks (a callback changed it on
    one), refused before the step's gradient all-reduce."""
    if comm is None:
        return contextlib.nullcontext()
    return comm.guard(what, steps) if model is None else comm.guard(what, steps, model)


def _run_steps(model, loss, optimizer, X, y, batch_size, shuffle, seed, epoch, history, callbacks, comm,
               plans=None, first=None, steps=None, targets=None):
    """One epoch's steps; returns this rank's (losses, a LossRecord; correct count), still on the device.
    With ``plans`` (a PlanCache) forward, loss and backward run in a step plan's buffers.
    ``first`` (the snapshot of the run's first epoch, whose first step is then checked) refuses a
    NaN/Inf loss at the run's first step, before any update: the data overflows, not the training.
    ``steps`` (``interrupts.Steps``) marks each step running, so a Ctrl-C waits for its end.
    ``targets`` (``inputs.CheckedTargets``) checks the targets again when a callback changed the layers."""
    data = backend_of(X)
    total, correct, steps = LossRecord(data, -(-X.shape[0] // batch_size), loss), 0.0, steps or Steps()
    for step, (idx, global_n, first_row) in enumerate(_batches(data, X.shape[0], batch_size, shuffle, seed,
                                                                 epoch, comm)):
        steps.running = True  # from zero_grad to the update: a Ctrl-C now is raised by steps.end()
        # on_batch_end callbacks run inside: the guard's agreement on the model's layout is the
        # last word before the gradient all-reduce
        with guard(comm, f"epoch {epoch + 1}, step {step}", steps, model):
            batch_share = None if comm is None else BatchShare(first_row, global_n, Sums(comm))
            try:  # up to the step's last sum over the ranks: a failure here joins the rest first
                _check_unchanged(model, data)
                if step:  # the epoch began in training mode: only a callback since can have changed it
                    _training_again(model)
                if targets is not None:
                    targets.check()
                model.zero_grad()
                plan, passed = _pass(model, loss, X, y, idx, global_n, comm, plans, batch_share)
            except BaseException:
                complete(model, batch_share)
                raise
            graphed = plan.graph if plan is not None else None  # the whole step, update included
            if passed is not None:
                Xb, yb, out, value = passed
                total.add(step, value, Xb.shape[0])  # stays on the device: no sync per batch
                if first is not None and step == 0:
                    _refuse_nonfinite_first_loss(model, loss, optimizer, Xb, yb, out, value, first, epoch)
                _call(callbacks, "on_batch_end", step, model, value)
                if history.metric_name:
                    correct = correct + _n_correct(loss, out, yb)
        if comm is not None:  # the global-batch mean gradient on every rank (the guard agreed on the layout)
            comm.allreduce_gradients_alike_(model, len(idx), global_n, scaled=True)
        if plan is None:
            optimizer.step(model)
        elif graphed is None:
            plan.update()  # the update's scratch in the plan's spent buffers
        steps.end()
    return total, correct


def _pass(model, loss, X, y, idx, global_n, comm, plans, batch_share):
    """``(plan, (Xb, yb, output, loss value))`` of this rank's samples ``idx``, the gradients in the
    model (scaled by the rank's weight ``n_r / B`` in dL/dY, not in every gradient after the
    backward); ``(None, None)`` where a rank holds no sample of a small last batch and only takes
    its part in the step's sums (``shares.idle``)."""
    if not len(idx):
        idle(model, batch_share)
        return None, None
    weight = comm.grad_scale(len(idx), global_n) if comm is not None else 1.0
    plan = None
    if plans is not None:  # a new plan's dry run: shapes as the share's, nothing summed with other ranks
        with shared(model, batch_share and dataclasses.replace(batch_share, sum_=None)):
            plan = plans.get(X, y, len(idx))
    with shared(model, batch_share):
        return plan, _forward_backward(model, loss, X, y, idx, weight, plan)


def _refuse_nonfinite_first_loss(model, loss, optimizer, Xb, yb, out, value, snapshot, epoch):
    """A NaN/Inf loss at a run's first step comes from the data with the (finite) starting parameters,
    not from the learning rate: refused at once (one sync), naming its cause, not after an epoch."""
    value = float(value)
    if math.isfinite(value):
        return
    _restore(model, optimizer, snapshot)  # a captured graph has applied its update
    try:
        _refuse_nonfinite_outputs(model, out, 0, "fit", "X's first batch")
        _refuse_nonfinite_loss(model, loss, Xb, yb, Xb.shape[0], value, "fit", ("X's first batch", "y"))
    except NumericalError as exc:
        raise NumericalError(f"{exc} (at the first step of epoch {epoch + 1}, before any update, so not from the "
                             f"learning rate; parameters and optimizer state are those before it)") from None


def _check_unchanged(model, data):
    """Refuse a model that a callback moved off the data's device or emptied of layers."""
    if model.backend is not data and model.backend != data:
        raise StateError(f"fit: the model moved to {model.backend.device} {model.backend.dtype} during "
                         f"training (in a callback?) but fit placed the data on {data.device} {data.dtype} "
                         f"when it started; move the model before calling fit")
    if not model.layers:  # the eager step would train the identity: the data as its own output
        raise StateError("fit: the model has no layers left (a callback removed them all)")


def _training_again(model):
    """Layers a callback left in eval mode (``model.eval()`` to look at the model, no ``model.train()``
    after) put back in training before the next step, with a warning naming them: fit trains in
    training mode (was: the rest of the epoch trained in eval, silently)."""
    idle = [f"{i} {type(layer).__name__}" for i, layer in enumerate(model.layers) if not layer.training]
    if idle:
        which = "the model" if len(idle) == len(model.layers) else f"layers {', '.join(idle)}"
        warnings.warn(f"fit: a callback left {which} in eval mode; fit trains in training mode, "
                      f"so they are put back before the next step (call model.train() after model.eval(); "
                      f"gpubp.evaluate and predict put the mode back themselves)", GpubpWarning, stacklevel=5)
        model.train()


def _forward_backward(model, loss, X, y, idx, weight, plan):
    """(Xb, yb, output, loss value) of the samples ``idx``, the gradients (times ``weight``) in the
    model: through ``plan``'s captured graph (the update too) or its buffers, else eagerly. ``plan``
    is ``PlanCache.get``'s for this step, so known to be current."""
    if plan is not None:
        Xb, yb = plan.gather_drawn(X, y, idx)
        return (Xb, yb, *PlanCache.run(plan, Xb, yb, weight))
    Xb, yb = X[idx], y[idx]
    out = model.forward(Xb)
    value = loss.forward(out, yb)
    dY = returned_gradient(loss, loss.backward(), out)  # a loss of one's own: dL/dY named as its, not a layer's
    if weight != 1:
        dY *= model.backend.dtype.type(weight)
    model.backward(dY, input_grad=False)
    return Xb, yb, out, value


def _run_epoch(model, loss, optimizer, X, y, batch_size, shuffle, seed, epoch, history, callbacks, snapshot,
               comm=None, plans=None, first=False, steps=None, targets=None):
    backend, n = model.backend, X.shape[0]
    t0 = time.perf_counter()
    # on one rank alone it stops every rank; so does a layout an on_epoch_begin callback changed on some
    # ranks only, before the first step's sums over the ranks (BatchNorm's, in the forward)
    with guard(comm, f"the start of epoch {epoch + 1}", model=model):
        _check_unchanged(model, backend_of(X))  # by an on_epoch_begin callback: said before the mode is set
    with _mode(model, True):
        losses, correct = _run_steps(model, loss, optimizer, X, y, batch_size, shuffle, seed, epoch, history,
                                     callbacks, comm, plans, snapshot if first else None, steps, targets)
    total = float(losses)
    if comm is not None:
        total, correct = comm.allreduce_scalars(total, float(correct))
    epoch_loss = total / n
    backend.synchronize()
    seconds = time.perf_counter() - t0
    written = _written_by(callbacks, "on_batch_end")
    hint = f"; or {written}" if written else ""
    if not math.isfinite(epoch_loss):
        origin = nonfinite_origin(losses, comm, epoch)  # with comm alike on every rank: a sum over them
        _restore(model, optimizer, snapshot)
        raise NumericalError(f"training loss became {epoch_loss} in epoch {epoch + 1}{origin}; parameters and "
                             f"optimizer state were restored to the start of that epoch "
                             f"(lower the learning rate, or check the data for NaN/Inf{hint})")
    _refuse_nonfinite_end(model, optimizer, snapshot, epoch, hint=hint)
    history.loss.append(epoch_loss)
    if history.metric_name:
        history.metric.append(_accuracy(correct, scored(loss, y)))  # target rows of zeros left out
    history.lr.append(optimizer.lr)
    history.epoch_time.append(seconds)
    history.samples_per_sec.append(n / seconds if seconds > 0 else float("inf"))


def _call(callbacks, method, *args):
    for cb in callbacks:
        fn = getattr(cb, method, None)
        if fn is not None:
            fn(*args)
