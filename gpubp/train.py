"""fit(): mini-batch training with history, progress, early stopping and checkpoints.

The data is moved to the model's device once; each epoch's batch order is a
permutation drawn on the host from ``(seed, epoch)``, so the CPU and the GPU see
the same batches and a resumed run repeats an uninterrupted one bit for bit.
"""
from __future__ import annotations

import math
import time

import numpy as np

from . import checkpoint
from .errors import NumericalError, ShapeError
from .history import History, Progress
from .losses import BinaryCrossEntropy, SoftmaxCrossEntropy, get_loss
from .optim import get_optimizer
from .schedules import get_schedule


def fit(model, X, y, loss="softmax_cross_entropy", optimizer="adam", lr=None, epochs=10,
        batch_size=32, shuffle=True, seed=None, validation_data=None, schedule=None, tol=None,
        patience=None, progress=None, callbacks=(), checkpoint_path=None, checkpoint_every=None,
        resume_from=None) -> History:
    """Train ``model`` in place by mini-batch gradient descent; return its :class:`History`.

    Each step: ``out = model(X[idx])``, ``loss(out, y[idx])``, ``model.backward(dL/dout)``,
    ``optimizer.step(model)``; epoch ``e`` visits the batches in the order of a permutation
    drawn on the host from ``(seed, e)``.

    Args:
        loss, optimizer: a name or an instance; ``lr`` overrides the optimizer's rate.
        seed: batch order (default 0, or the seed stored in ``resume_from``).
        schedule: "constant", "step", "cosine" or a callable ``epoch -> lr``.
        tol: stop when the training loss changes by less than ``tol`` (relative).
        patience: stop when the validation metric (else loss) has not improved for that
            many epochs.
        progress: True/False; default: a progress line on stderr when it is a terminal.
        callbacks: objects with any of ``on_epoch_begin(epoch, model)``,
            ``on_batch_end(step, model, loss_value)`` (after backward, before the step)
            and ``on_epoch_end(epoch, model, history)``.
        checkpoint_path, checkpoint_every: write a checkpoint every N epochs.
        resume_from: a checkpoint written by fit(); the run continues as if never stopped.

    A NaN/Inf epoch loss raises NumericalError after restoring the parameters and the
    optimizer state from the start of that epoch. Ctrl-C returns the history so far
    with ``interrupted=True`` (the model keeps the updates made until then).
    """
    backend = model.backend
    loss = get_loss(loss)
    optimizer = get_optimizer(optimizer)
    _check_positive(epochs=epochs, batch_size=batch_size, lr=1 if lr is None else lr)
    if lr is not None:  # also overrides the lr of an optimizer instance
        optimizer.lr = float(lr)
    Xd, yd = _prepare(model, loss, X, y)
    val = _prepare(model, loss, *validation_data) if validation_data is not None else None
    # the schedule starts from the run's initial lr, also when resuming
    sched = get_schedule(schedule, optimizer.lr, epochs) if schedule is not None else None
    history, start = History(metric_name=_metric_name(loss)), 0
    if resume_from is not None:
        history, start, optimizer, saved_seed = _resume(resume_from, model, optimizer)
        seed = saved_seed if seed is None else seed
    seed = 0 if seed is None else seed
    bar = Progress(epochs, progress)
    try:
        with loss.targets_checked():  # every label was checked once, above: no sync per batch
            for epoch in range(start, epochs):
                if sched is not None:
                    optimizer.lr = sched(epoch)
                _call(callbacks, "on_epoch_begin", epoch, model)
                _run_epoch(model, loss, optimizer, Xd, yd, batch_size, shuffle, seed, epoch, history, callbacks)
                if val is not None:
                    v_loss, v_metric = _evaluate(model, loss, *val, batch_size=max(batch_size, 1024))
                    history.val_loss.append(v_loss)
                    if v_metric is not None:
                        history.val_metric.append(v_metric)
                bar.epoch(epoch, history.summary(epoch))
                _call(callbacks, "on_epoch_end", epoch, model, history)
                if checkpoint_path and checkpoint_every and (epoch + 1) % checkpoint_every == 0:
                    save_training(checkpoint_path, model, optimizer, history, seed)
                history.stopped = _stop_reason(history, tol, patience)
                if history.stopped:
                    break
    except KeyboardInterrupt:
        history.interrupted = True
    finally:
        bar.close()
    return history


def _run_epoch(model, loss, optimizer, X, y, batch_size, shuffle, seed, epoch, history, callbacks):
    backend, n = model.backend, X.shape[0]
    order = np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)
    order = backend.asarray(order)
    snapshot = _snapshot(model, optimizer)
    t0, total, correct = time.perf_counter(), 0.0, 0.0
    for step, lo in enumerate(range(0, n, batch_size)):
        idx = order[lo:lo + batch_size]
        Xb, yb = X[idx], y[idx]
        out = model.forward(Xb)
        value = loss.forward(out, yb)
        model.zero_grad()
        model.backward(loss.backward(), input_grad=False)
        _call(callbacks, "on_batch_end", step, model, value)
        optimizer.step(model)
        total = total + value * Xb.shape[0]  # stays on the device: no sync per batch
        if history.metric_name:
            correct = correct + _n_correct(out, yb)
    epoch_loss = float(total) / n
    backend.synchronize()
    seconds = time.perf_counter() - t0
    if not math.isfinite(epoch_loss):
        _restore(model, optimizer, snapshot)
        raise NumericalError(f"training loss became {epoch_loss} in epoch {epoch + 1}; parameters and "
                             f"optimizer state were restored to the start of that epoch "
                             f"(lower the learning rate, or check the data for NaN/Inf)")
    history.loss.append(epoch_loss)
    if history.metric_name:
        history.metric.append(float(correct) / n)
    history.lr.append(optimizer.lr)
    history.epoch_time.append(seconds)
    history.samples_per_sec.append(n / seconds if seconds > 0 else float("inf"))


def _snapshot(model, optimizer):
    """Device copies of the parameters and the optimizer's step count and slots."""
    return ({k: v.copy() for k, v in model.parameters().items()}, optimizer.t,
            {n: {s: a.copy() for s, a in st.items()} for n, st in optimizer.state.items()})


def _restore(model, optimizer, snapshot):
    params, optimizer.t, state = snapshot
    for k, v in model.parameters().items():
        v[...] = params[k]
    optimizer.state = state


def evaluate(model, X, y, loss="softmax_cross_entropy", batch_size=1024) -> dict:
    """``{"loss": ..., "accuracy": ...}`` (accuracy for classification losses) on (X, y)."""
    loss = get_loss(loss)
    with loss.targets_checked():
        value, metric = _evaluate(model, loss, *_prepare(model, loss, X, y), batch_size=batch_size)
    result = {"loss": value}
    if metric is not None:
        result[_metric_name(loss)] = metric
    return result


def predict(model, X, batch_size=1024) -> np.ndarray:
    """Model outputs for X as a host NumPy array, computed in batches."""
    Xd = model.backend.check_finite(model.backend.asarray(X), "X")
    outs = [model.backend.to_numpy(model.forward(Xd[i:i + batch_size]))
            for i in range(0, Xd.shape[0], batch_size)]
    return np.concatenate(outs)


def _evaluate(model, loss, X, y, batch_size):
    total, correct, n = 0.0, 0.0, X.shape[0]
    for lo in range(0, n, batch_size):
        out = model.forward(X[lo:lo + batch_size])
        total = total + loss.forward(out, y[lo:lo + batch_size]) * out.shape[0]
        correct = correct + _n_correct(out, y[lo:lo + batch_size])
    metric = float(correct) / n if _metric_name(loss) else None
    return float(total) / n, metric


def _metric_name(loss):
    return "accuracy" if isinstance(loss, (SoftmaxCrossEntropy, BinaryCrossEntropy)) else None


def _n_correct(out, y):
    """Correct predictions in a batch: argmax for several outputs, logit > 0 for one."""
    if out.ndim == 2 and out.shape[1] > 1:
        pred = out.argmax(axis=1)
        truth = y if y.ndim == 1 else y.argmax(axis=1)
    else:
        pred, truth = out > 0, y > 0.5
    return (pred == truth).sum()


def _prepare(model, loss, X, y):
    """(X, y) on the model's device, checked: shapes, NaN/Inf, and every target once
    against the model's output (labels in range)."""
    X, y = _to_device(model.backend, X, y)
    loss.check_targets(model.forward(X[:1]), y)
    return X, y


def _to_device(backend, X, y):
    X, y = backend.asarray(X), backend.asarray(y)
    if X.ndim != 2:
        raise ShapeError(f"fit: X must be 2-d (samples, features), got shape {tuple(X.shape)}")
    if y.shape[0] != X.shape[0]:
        raise ShapeError(f"fit: X has {X.shape[0]} samples but y has {y.shape[0]}")
    if X.shape[0] == 0:
        raise ShapeError("fit: no samples (X is empty)")
    backend.check_finite(X, "X")
    backend.check_finite(y, "y")
    return X, y


def _check_positive(**values):
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"fit: {name} must be > 0, got {value}")


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


def _resume(path, model, optimizer):
    ck = checkpoint.load_into(path, model)
    extra = ck.metadata.get("extra", {})
    if "epochs_done" not in extra:
        raise checkpoint.CheckpointError(f"{path} holds no training state (epochs done) to resume from")
    return (History.from_dict(extra["history"]), int(extra["epochs_done"]), ck.optimizer or optimizer,
            extra.get("seed"))
