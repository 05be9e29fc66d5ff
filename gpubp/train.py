"""fit(): mini-batch training with history, progress, early stopping and checkpoints.

The data is moved to the model's device once; each epoch's batch order is a
permutation drawn on the host from ``(seed, epoch)``, so the CPU and the GPU see
the same batches and a resumed run repeats an uninterrupted one bit for bit.
With a communicator (``gpubp.distributed``) each of N processes trains on its share
of every such batch and the gradients are summed so each step is the single-process one.

Nothing non-finite leaves fit: after every epoch the parameters and the optimizer's
slots are checked (one device sync), and a NaN/Inf anywhere restores the state of the
start of that epoch (itself checked) and raises NumericalError; a checkpoint is only
written from checked state.
"""
from __future__ import annotations

import contextlib
import math
import time

import numpy as np

from . import _checks, checkpoint
from ._compat import cupy, is_cupy_array
from .errors import CheckpointError, GpubpError, InvalidValueError, NumericalError, ShapeError
from .history import History, Progress
from .layers import Activation, Identity
from .losses import BinaryCrossEntropy, SoftmaxCrossEntropy, get_loss
from .optim import get_optimizer, optimizer_from_state
from .plan import PlanCache
from .schedules import get_schedule

HOOKS = ("on_epoch_begin", "on_batch_end", "on_epoch_end")
FLOAT32_MAX = float(np.finfo(np.float32).max)


def fit(model, X, y, loss="softmax_cross_entropy", optimizer=None, lr=None, epochs=10,
        batch_size=32, shuffle=True, seed=None, validation_data=None, schedule=None, tol=None,
        patience=None, progress=None, callbacks=(), checkpoint_path=None, checkpoint_every=None,
        resume_from=None, comm=None, restore_best=False, checkpoint_extra=None, plan=True) -> History:
    """Train ``model`` in place by mini-batch gradient descent; return its :class:`History`.

    Each step: ``out = model(X[idx])``, ``loss(out, y[idx])``, ``model.backward(dL/dout)``,
    ``optimizer.step(model)``; epoch ``e`` visits the batches in the order of a permutation
    drawn on the host from ``(seed, e)``.

    Args:
        loss: a name or an instance.
        optimizer: a name or an instance; default Adam (or, resuming, the saved optimizer).
        lr: overrides the optimizer's rate (also a resumed one); a finite number > 0.
        seed: batch order (default 0, or the seed stored in ``resume_from``).
        schedule: "constant", "step", "cosine" or a callable ``epoch -> lr`` (must return a
            finite number >= 0); it starts from ``lr``, else the run's first rate.
        tol: stop when the training loss changes by less than ``tol`` (relative).
        patience: stop when the validation metric (else loss) has not improved for that
            many epochs.
        progress: True/False; default: a progress line on stderr when it is a terminal.
        callbacks: one object, or a list of objects, with any of ``on_epoch_begin(epoch, model)``,
            ``on_batch_end(step, model, loss_value)`` (after backward, before the step)
            and ``on_epoch_end(epoch, model, history)``.
        checkpoint_path, checkpoint_every: write a checkpoint every N epochs (both or neither;
            the folder must exist and be writable, checked before training), and once more at
            the end when the last epoch was not written (early stop, restore_best), so the
            checkpoint holds the model returned.
        checkpoint_extra: a JSON-able dict kept in every checkpoint's extras (e.g. the feature
            scaling a model needs to predict raw data).
        restore_best: keep a host copy of the parameters, buffers and optimizer state of this
            run's best epoch (validation metric, else validation loss, else training loss: the
            criterion of ``patience``) and put it back at the end, also after Ctrl-C;
            ``history.best_epoch`` names it.
        resume_from: a checkpoint written by fit(); the run continues as if never stopped.
            The saved optimizer continues unless ``optimizer`` says otherwise: a name must
            name the saved kind; an instance of the saved kind keeps its own hyperparameters
            and receives the saved step count and slots; another kind is refused.
        comm: a communicator for data parallelism (``gpubp.distributed.mpi.world()``, under
            ``mpiexec -n N``): every rank calls fit with the same arguments; each trains on its
            share of every global batch of ``batch_size``, gradients are summed weighted by
            share (the single-process step), an error on one rank stops all ranks, and only
            rank 0 shows progress and writes checkpoints.
        plan: run each step into buffers allocated once (``gpubp.plan``: one plan per batch
            shape, the same numbers as the eager step); False, or a layer without ``out=``
            buffers (Dropout, BatchNorm, image layers), runs the eager step.

    A NaN/Inf epoch loss, parameter or optimizer slot raises NumericalError after restoring
    the parameters and the optimizer state from the start of that epoch. Ctrl-C returns the
    history so far with ``interrupted=True`` (the model keeps the updates made until then,
    unless they are not finite: then it holds the start of that epoch).
    """
    _check_model(model, "fit")
    loss = get_loss(loss)
    epochs = _checks.integer("fit: epochs", epochs, 1)
    batch_size = _checks.integer("fit: batch_size", batch_size, 1)
    lr = None if lr is None else _checks.number("fit: lr", lr, low=0, low_open=True)
    seed = None if seed is None else _checks.integer("fit: seed", seed, 0)
    tol = None if tol is None else _checks.number("fit: tol", tol, low=0)
    patience = None if patience is None else _checks.integer("fit: patience", patience, 1)
    callbacks = _callbacks(callbacks)
    checkpoint_every = _checkpointing(checkpoint_path, checkpoint_every)
    with _guard(comm, "checking the data"):
        Xd, yd = _prepare(model, loss, X, y, "fit")
        val = _validation(model, loss, validation_data)
    history, start = History(metric_name=_metric_name(loss)), 0
    if resume_from is not None:
        history, start, optimizer, saved_seed = _resume(resume_from, model, optimizer)
        seed = saved_seed if seed is None else seed
    else:
        optimizer = get_optimizer("adam" if optimizer is None else optimizer)
    if lr is not None:  # also overrides the lr of an optimizer instance or a resumed one
        optimizer.lr = lr
    # the schedule starts from the run's initial lr, also when resuming
    first_lr = lr if lr is not None else (history.lr[0] if history.lr else optimizer.lr)
    sched = get_schedule(schedule, first_lr, epochs) if schedule is not None else None
    if sched is None:
        _checks.number("fit: the optimizer's lr", optimizer.lr, low=0, low_open=True)
    _refuse_nonfinite_start(model, optimizer)
    if comm is not None:  # every rank starts from rank 0's model and optimizer
        comm.check_consistent(model, optimizer)
        comm.broadcast_training_state_(model, optimizer)
    seed = 0 if seed is None else seed
    root = comm is None or comm.is_root
    bar, snapshot = Progress(epochs, progress if root else False), None
    keeper = _BestKeeper(optimizer) if restore_best else None
    if not isinstance(plan, bool):
        raise InvalidValueError(f"fit: plan must be True or False, got {plan!r}")
    plans = PlanCache(model, loss, optimizer) if plan else None  # step plans, one per batch shape
    callbacks = callbacks + ((keeper,) if keeper else ())
    try:
        with loss.targets_checked():  # every label was checked once, above: no sync per batch
            for epoch in range(start, epochs):
                if sched is not None:
                    optimizer.lr = _scheduled_lr(sched, epoch)
                snapshot = _snapshot(model, optimizer)  # finite: checked at the start or after the last epoch
                _call(callbacks, "on_epoch_begin", epoch, model)
                _run_epoch(model, loss, optimizer, Xd, yd, batch_size, shuffle, seed, epoch, history,
                           callbacks, snapshot, comm, plans)
                if val is not None:
                    v_loss, v_metric = _evaluate(model, loss, *val, batch_size=max(batch_size, 1024))
                    history.val_loss.append(v_loss)
                    if v_metric is not None:
                        history.val_metric.append(v_metric)
                bar.epoch(epoch, history.summary(epoch))
                _call(callbacks, "on_epoch_end", epoch, model, history)
                if checkpoint_every and (epoch + 1) % checkpoint_every == 0:
                    _refuse_nonfinite_end(model, optimizer, snapshot, epoch)  # callbacks may have written
                    if root:
                        save_training(checkpoint_path, model, optimizer, history, seed, **(checkpoint_extra or {}))
                history.stopped = _stop_reason(history, tol, patience)
                if history.stopped:
                    break
    except KeyboardInterrupt:
        history.interrupted = True
        if snapshot is not None and _nonfinite(model, optimizer):
            _restore(model, optimizer, snapshot)
    finally:
        bar.close()
    return _finish(model, optimizer, history, keeper, seed, root and checkpoint_path, checkpoint_every,
                   checkpoint_extra)


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """The batch order of ``epoch``: a permutation of ``range(n)`` drawn on the host from
    ``(seed, epoch)`` (the same on every device and every rank), or ``range(n)`` unshuffled."""
    return np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)


def _batches(backend, n, batch_size, shuffle, seed, epoch, comm):
    """``(indices on the device, global batch size)`` of each step: the consecutive slices of
    ``epoch_order``, or with ``comm`` this rank's share of each (``global_n`` then counts all ranks)."""
    if comm is None:
        order = backend.asarray(epoch_order(n, seed, epoch, shuffle))
        return ((order[lo:lo + batch_size], None) for lo in range(0, n, batch_size))
    return ((backend.asarray(idx), global_n) for idx, global_n in comm.local_batches(n, batch_size, seed, epoch, shuffle))


def _mode(model, training):
    """The model in training or eval mode for a block (a model without modes runs as it is)."""
    return model.mode(training) if hasattr(model, "mode") else contextlib.nullcontext()


def _guard(comm, what):
    """With a communicator, an error on any rank inside the block stops every rank alike."""
    return contextlib.nullcontext() if comm is None else comm.guard(what)


def _run_steps(model, loss, optimizer, X, y, batch_size, shuffle, seed, epoch, history, callbacks, comm,
               plans=None):
    """One epoch's steps; returns this rank's (loss sum, correct count), still on the device.
    With ``plans`` (a PlanCache) forward, loss and backward run in a step plan's buffers."""
    total, correct = 0.0, 0.0
    for step, (idx, global_n) in enumerate(_batches(model.backend, X.shape[0], batch_size, shuffle, seed, epoch,
                                                    comm)):
        with _guard(comm, f"epoch {epoch + 1}, step {step}"):
            model.zero_grad()
            if len(idx):  # with a communicator a rank may hold no sample of a small last batch
                plan = plans.get(X, y, len(idx)) if plans is not None else None
                if plan is not None:
                    Xb, yb = plan.gather(X, y, idx)
                    out, value = plan.run(Xb, yb)
                else:
                    Xb, yb = X[idx], y[idx]
                    out = model.forward(Xb)
                    value = loss.forward(out, yb)
                    model.backward(loss.backward(), input_grad=False)
                _call(callbacks, "on_batch_end", step, model, value)
                total = total + value * Xb.shape[0]  # stays on the device: no sync per batch
                if history.metric_name:
                    correct = correct + _n_correct(loss, out, yb)
        if comm is not None:  # the global-batch mean gradient on every rank
            comm.allreduce_gradients_(model, len(idx), global_n)
        optimizer.step(model)
    return total, correct


def _run_epoch(model, loss, optimizer, X, y, batch_size, shuffle, seed, epoch, history, callbacks, snapshot,
               comm=None, plans=None):
    backend, n = model.backend, X.shape[0]
    t0 = time.perf_counter()
    with _mode(model, True):
        total, correct = _run_steps(model, loss, optimizer, X, y, batch_size, shuffle, seed, epoch, history,
                                    callbacks, comm, plans)
    if comm is not None:
        total, correct = comm.allreduce_scalars(float(total), float(correct))
    epoch_loss = float(total) / n
    backend.synchronize()
    seconds = time.perf_counter() - t0
    if not math.isfinite(epoch_loss):
        _restore(model, optimizer, snapshot)
        raise NumericalError(f"training loss became {epoch_loss} in epoch {epoch + 1}; parameters and "
                             f"optimizer state were restored to the start of that epoch "
                             f"(lower the learning rate, or check the data for NaN/Inf)")
    _refuse_nonfinite_end(model, optimizer, snapshot, epoch)
    history.loss.append(epoch_loss)
    if history.metric_name:
        history.metric.append(float(correct) / n)
    history.lr.append(optimizer.lr)
    history.epoch_time.append(seconds)
    history.samples_per_sec.append(n / seconds if seconds > 0 else float("inf"))


def _nonfinite(model, optimizer) -> list:
    """Names of the parameters and optimizer slots holding NaN/Inf (one device sync for all)."""
    arrays = {f"parameter {k}": v for k, v in model.parameters().items()}
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


def _refuse_nonfinite_end(model, optimizer, snapshot, epoch):
    bad = _nonfinite(model, optimizer)
    if bad:
        _restore(model, optimizer, snapshot)
        raise NumericalError(f"training produced NaN/Inf in epoch {epoch + 1} although the loss stayed finite "
                             f"({', '.join(bad)}); parameters and optimizer state were restored to the start "
                             f"of that epoch (lower the learning rate, or scale the inputs)")


class _BestKeeper:
    """fit(restore_best=True): host copies of the parameters, buffers and optimizer state of
    the best epoch so far (the criterion of ``patience``), put back by ``restore``."""

    def __init__(self, optimizer):
        self.optimizer, self.value, self.epoch, self.state = optimizer, math.inf, None, None

    def on_epoch_end(self, epoch, model, history):
        value = ([-m for m in history.val_metric] or history.val_loss or history.loss)[-1]
        if value < self.value:
            host = model.backend.to_numpy
            self.value, self.epoch = value, epoch
            self.state = ({k: host(v).copy() for k, v in model.parameters().items()},
                          {k: host(v).copy() for k, v in model.buffers().items()}, self.optimizer.t,
                          {n: {s: host(a).copy() for s, a in st.items()} for n, st in self.optimizer.state.items()})

    def restore(self, model, history) -> bool:
        """Put the best epoch back (True), or do nothing when no epoch ran (False)."""
        if self.state is None:
            return False
        params, buffers, self.optimizer.t, state = self.state
        model.load_parameters(params)
        model.load_buffers(buffers)
        asarray = model.backend.asarray
        self.optimizer.state = {n: {s: asarray(a) for s, a in st.items()} for n, st in state.items()}
        history.best_epoch = self.epoch + 1
        return True


def _finish(model, optimizer, history, keeper, seed, path, every, extra) -> History:
    """The end of fit: the best epoch put back (restore_best), and the checkpoint at ``path``
    made to hold the model returned when its last write was of an earlier epoch."""
    restored = keeper is not None and keeper.restore(model, history)
    written = every and history.epochs % every == 0 and not restored
    if path and history.epochs and not history.interrupted and not written:
        save_training(path, model, optimizer, history, seed, **(extra or {}))
    return history


def _snapshot(model, optimizer):
    """Device copies of the parameters and the optimizer's step count and slots."""
    return ({k: v.copy() for k, v in model.parameters().items()}, optimizer.t,
            {n: {s: a.copy() for s, a in st.items()} for n, st in optimizer.state.items()})


def _restore(model, optimizer, snapshot):
    params, optimizer.t, state = snapshot
    for k, v in model.parameters().items():
        v[...] = params[k]
    optimizer.state = {n: {s: a.copy() for s, a in st.items()} for n, st in state.items()}


def _scheduled_lr(sched, epoch) -> float:
    value = sched(epoch)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not (math.isfinite(value) and value >= 0):
        raise InvalidValueError(f"fit: the schedule gave lr={value!r} for epoch {epoch}; a learning rate "
                                f"must be a finite number >= 0")
    return float(value)


def evaluate(model, X, y, loss="softmax_cross_entropy", batch_size=1024) -> dict:
    """``{"loss": ..., "accuracy": ...}`` (accuracy for classification losses) on (X, y), in eval mode."""
    _check_model(model, "evaluate")
    loss = get_loss(loss)
    batch_size = _checks.integer("evaluate: batch_size", batch_size, 1)
    with loss.targets_checked():
        value, metric = _evaluate(model, loss, *_prepare(model, loss, X, y, "evaluate"), batch_size=batch_size)
    result = {"loss": value}
    if metric is not None:
        result[_metric_name(loss)] = metric
    return result


def predict(model, X, batch_size=1024) -> np.ndarray:
    """Model outputs for X as a host NumPy array, computed in batches in eval mode."""
    _check_model(model, "predict")
    batch_size = _checks.integer("predict: batch_size", batch_size, 1)
    Xd = _features(model, X, "predict", "X")
    with _mode(model, False):
        outs = [model.backend.to_numpy(model.forward(Xd[i:i + batch_size]))
                for i in range(0, Xd.shape[0], batch_size)]
    return np.concatenate(outs)


def _evaluate(model, loss, X, y, batch_size):
    """Mean loss and metric over (X, y) in eval mode (Dropout off, BatchNorm's running statistics)."""
    total, correct, n = 0.0, 0.0, X.shape[0]
    with _mode(model, False):
        for lo in range(0, n, batch_size):
            out = model.forward(X[lo:lo + batch_size])
            total = total + loss.forward(out, y[lo:lo + batch_size]) * out.shape[0]
            if _metric_name(loss):
                correct = correct + _n_correct(loss, out, y[lo:lo + batch_size])
    metric = float(correct) / n if _metric_name(loss) else None
    return float(total) / n, metric


def _metric_name(loss):
    return "accuracy" if isinstance(loss, (SoftmaxCrossEntropy, BinaryCrossEntropy)) else None


def _n_correct(loss, out, y):
    """Correct predictions in a batch, as the loss defines them: for softmax cross-entropy the
    argmax class; for BCE each output is its own yes/no (logit > 0 against target > 0.5), so a
    sample counts as the fraction of its outputs that are right."""
    if isinstance(loss, BinaryCrossEntropy):
        return ((out > 0) == (y > 0.5)).sum() / out.shape[1]
    truth = y if y.ndim == 1 else y.argmax(axis=1)
    return (out.argmax(axis=1) == truth).sum()


def _prepare(model, loss, X, y, what, names=("X", "y")):
    """(X, y) on the model's device, checked: shapes, NaN/Inf, and every target once
    against the model's output (labels in range). Errors name ``what`` and ``names``."""
    X = _features(model, X, what, names[0])
    labels = isinstance(loss, SoftmaxCrossEntropy) and np.ndim(y) == 1  # integer labels stay integers
    y = _array(model.backend, y, what, names[1], dtype=None if labels else model.backend.dtype)
    if y.ndim == 0 or y.shape[0] != X.shape[0]:
        found = "a single number (0-d)" if y.ndim == 0 else f"{y.shape[0]} (shape {tuple(y.shape)})"
        raise ShapeError(f"{what}: {names[0]} has {X.shape[0]} samples but {names[1]} has {found}; "
                         f"give one target per sample")
    model.backend.check_finite(y, f"{what}: {names[1]}")
    with _mode(model, False):  # a probe: no Dropout step, no BatchNorm statistics
        out = model.forward(X[:1])
    if not labels and tuple(y.shape[1:]) != tuple(out.shape[1:]):
        raise ShapeError(f"{what}: {names[1]} has shape {tuple(y.shape)} but the model gives "
                         f"{tuple(out.shape[1:])} per sample; {names[1]} must have shape "
                         f"{(y.shape[0], *out.shape[1:])}")
    loss.check_targets(out, y)
    return X, y


def _validation(model, loss, data):
    if data is None:
        return None
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        kind = f"a {len(data)}-item {type(data).__name__}" if isinstance(data, (tuple, list)) \
            else f"a {type(data).__name__}"
        raise InvalidValueError(f"fit: validation_data must be a pair (X_val, y_val), got {kind}")
    return _prepare(model, loss, *data, "fit", names=("validation_data X", "validation_data y"))


def _features(model, X, what, name):
    """X as a finite, non-empty float array of samples (rows of features, or images (N, C, H, W))
    on the model's device, of the model's width where its first layer says one."""
    X = _array(model.backend, X, what, name, dtype=model.backend.dtype)
    if X.ndim < 2:
        raise ShapeError(f"{what}: {name} must hold samples along its first axis, as (samples, features) "
                         f"or (samples, channels, height, width); got shape {tuple(X.shape)}")
    if X.shape[0] == 0:
        raise ShapeError(f"{what}: no samples ({name} has shape {tuple(X.shape)})")
    width = _input_width(model)
    if width is not None and X.ndim == 2 and X.shape[1] != width:
        raise ShapeError(f"{what}: {name} has shape {tuple(X.shape)}, {X.shape[1]} features per sample, "
                         f"but the model's first layer {model.layers[0]!r} expects {width}")
    return model.backend.check_finite(X, f"{what}: {name}")


def _array(backend, a, what, name, dtype=None):
    """``a`` on ``backend``; float64 data beyond float32's range is named as such, not let
    overflow to Inf (with a RuntimeWarning) on the way to a float32 model."""
    if not hasattr(a, "dtype"):
        try:
            a = np.asarray(a)
        except ValueError as exc:  # ragged lists
            raise ShapeError(f"{what}: {name} is not a rectangular array ({exc})") from None
    if backend.dtype == np.float32 and a.dtype.kind == "f" and a.dtype.itemsize > 4 and a.size:
        xp = cupy if is_cupy_array(a) else np
        largest = float(xp.where(xp.isfinite(a), xp.abs(a), 0).max())
        if largest > FLOAT32_MAX:
            raise NumericalError(f"{what}: {name} holds values up to {largest:.3g}, beyond float32's range "
                                 f"(+-{FLOAT32_MAX:.3g}); use a float64 model or rescale the data")
    try:
        return backend.asarray(a, dtype=dtype if a.dtype.kind in "iub" else None)
    except GpubpError as exc:
        raise type(exc)(f"{what}: {name}: {exc}") from None


def _input_width(model):
    """The input width the model's first Dense layer needs, when only activations precede it."""
    for layer in model.layers:
        if hasattr(layer, "n_in"):
            return layer.n_in
        if not isinstance(layer, (Activation, Identity)):
            return None
    return None


def _check_model(model, what):
    if not all(hasattr(model, a) for a in ("backend", "layers", "forward", "backward", "parameters")):
        raise InvalidValueError(f"{what}: model must be a gpubp Sequential, got a {type(model).__name__}")


def _callbacks(callbacks) -> tuple:
    """A tuple of callback objects from one object, a list of them, or None."""
    if callbacks is None:
        return ()
    if any(callable(getattr(callbacks, h, None)) for h in HOOKS):
        return (callbacks,)
    try:
        items = tuple(callbacks)
    except TypeError:
        raise InvalidValueError(f"fit: callbacks must be an object with any of {', '.join(HOOKS)}, or a list "
                                f"of them; got a {type(callbacks).__name__}") from None
    for i, cb in enumerate(items):
        if not any(callable(getattr(cb, h, None)) for h in HOOKS):
            raise InvalidValueError(f"fit: callbacks[{i}] (a {type(cb).__name__}) has none of the methods "
                                    f"{', '.join(HOOKS)}")
    return items


def _checkpointing(path, every):
    """``checkpoint_every`` checked against ``checkpoint_path`` (both or neither); the folder
    is checked writable now, before any training."""
    if path is None:
        if every is not None:
            raise InvalidValueError(f"fit: checkpoint_every={every!r} without checkpoint_path; nothing would "
                                    f"be written (give checkpoint_path too)")
        return None
    if every is None:
        raise InvalidValueError("fit: checkpoint_path needs checkpoint_every, a whole number >= 1 "
                                "(write every N epochs), got None")
    every = _checks.integer("fit: checkpoint_every", every, 1)
    _checks.writable_target("fit: checkpoint_path", path)
    return every


def _stop_reason(history, tol, patience):
    if tol is not None and len(history.loss) >= 2:
        prev, last = history.loss[-2], history.loss[-1]
        if abs(prev - last) <= tol * max(abs(prev), 1e-12):
            return f"converged: loss changed by less than {tol:g} (relative)"
    if patience is not None:
        watched = [-m for m in history.val_metric] or history.val_loss or history.loss
        best = int(np.argmin(watched))
        if len(watched) - 1 - best >= patience:
            return f"no improvement for {patience} epochs (best at epoch {best + 1})"
    return None


def _call(callbacks, method, *args):
    for cb in callbacks:
        fn = getattr(cb, method, None)
        if fn is not None:
            fn(*args)


def save_training(path, model, optimizer, history, seed, **extra) -> str:
    """Checkpoint ``model`` and ``optimizer`` with what ``fit(resume_from=path)`` reads back
    (epochs done, seed, history; this module is the only writer and reader of those) and ``extra``."""
    state = {"epochs_done": history.epochs, "seed": seed, "history": history.as_dict()}
    return checkpoint.save(path, model, optimizer, extra={**extra, **state})


def _resume(path, model, requested):
    """(history, epochs done, optimizer, seed) saved at ``path``, the parameters loaded into
    ``model``. Every conflict is refused before the model is touched."""
    meta = checkpoint.read_metadata(path)
    history, done, seed = _training_state(meta.get("extra"), path)
    saved_kind = _saved_optimizer_kind(meta, model, path)
    wanted = None if requested is None else get_optimizer(requested)
    if wanted is not None and saved_kind is not None and \
            (type(wanted).__name__, tuple(wanted.slots)) != saved_kind:
        raise InvalidValueError(
            f"fit: resume_from={path} continues a {saved_kind[0]} run (slots {list(saved_kind[1])}) but "
            f"optimizer={requested!r} asks for {type(wanted).__name__} (slots {list(wanted.slots)}); "
            f"leave optimizer out to continue with the saved one, or start a new run without resume_from")
    ck = checkpoint.load_into(path, model)
    if ck.optimizer is None:
        return history, done, wanted or get_optimizer("adam"), seed
    if wanted is None or isinstance(requested, str):
        return history, done, ck.optimizer, seed
    wanted.t, wanted.state = ck.optimizer.t, ck.optimizer.state  # the instance's hyperparameters, saved slots
    return history, done, wanted, seed


def _saved_optimizer_kind(meta, model, path):
    """(type name, slots) of the optimizer saved in ``meta``, or None."""
    if "optimizer" not in meta:
        return None
    try:
        probe = optimizer_from_state({**meta["optimizer"], "state": {}}, model.backend)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{path}: the saved optimizer is unreadable ({exc})") from None
    return type(probe).__name__, tuple(probe.slots)


def _training_state(extra, path):
    """(history, epochs done, seed) from a checkpoint's ``extra``, each checked."""
    if not isinstance(extra, dict) or "epochs_done" not in extra:
        raise CheckpointError(f"{path} holds no training state (epochs done) to resume from")
    try:
        done = _checks.integer("epochs_done", extra["epochs_done"], 0)
        seed = extra.get("seed")
        seed = None if seed is None else _checks.integer("seed", seed, 0)
        history = History.from_dict(extra.get("history"))
    except GpubpError as exc:
        raise CheckpointError(f"{path}: damaged training state: {exc}") from None
    if history.epochs != done:
        raise CheckpointError(f"{path}: damaged training state: epochs_done is {done} but the history "
                              f"holds {history.epochs} epochs")
    return history, done, seed
