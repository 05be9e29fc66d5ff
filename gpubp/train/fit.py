"""fit(): mini-batch training with history, progress, early stopping and checkpoints.

The data is moved to the model's device once; each epoch's batch order is a
permutation drawn on the host from ``(seed, epoch)``, so the CPU and the GPU see
the same batches and a resumed run repeats an uninterrupted one bit for bit.
With a communicator (``gpubp.distributed``) each of N processes trains on its share
of every such batch and the gradients are summed so each step is the single-process one.
"""
from __future__ import annotations

import numpy as np

from .. import _checks
from ..errors import GpubpError, NumericalError
from ..history import History
from ..losses import get_loss
from ..network import Sequential
from ..optim import get_optimizer
from ..plan import PlanCache
from ..progress import Progress
from .arguments import _AsGiven, _check_cuda_graph, _run_lr
from .callbacks import agreed_stop, checked_callbacks, checked_stop
from .ending import _finish, _stopped, _write_checkpoint
from .epoch import _call, _run_epoch, guard
from .evaluation import _evaluate, _metric_name
from .inputs import (CheckedTargets, _check_comm, _checkpoint_extra, _checkpointing,
                     _one_sample_batch, _prepare, _validation, _warn_sigmoid_twice, refuse_regression_targets,
                     unlabelled_rows)
from .interrupts import deferred
from .pixels import check_range, remember_range, warn_raw_pixels
from .resume import _resume, data_fingerprint
from .settings import _lr_fits, _run_settings, _scheduled_lr, _stop_reason
from .state import (_BestKeeper, _marks, _nonfinite, _refuse_nonfinite_end, _refuse_nonfinite_start, _restore,
                    _roll_back, _snapshot, _truncate, _written_by)


def fit(model, X, y, loss=None, optimizer=None, lr=None, epochs=10,
        batch_size=32, shuffle=True, seed=None, validation_data=None, schedule=None, tol=None,
        patience=None, progress=None, callbacks=(), checkpoint_path=None, checkpoint_every=None,
        resume_from=None, comm=None, restore_best=False, checkpoint_extra=None, plan=True,
        cuda_graph=False, overwrite=False) -> History:
    """Train ``model`` in place by mini-batch gradient descent; return its :class:`History`.

    Each step: ``out = model(X[idx])``, ``loss(out, y[idx])``, ``model.backward(dL/dout)``,
    ``optimizer.step(model)``; epoch ``e`` visits the batches in the order of a permutation
    drawn on the host from ``(seed, e)``.

    Args:
        X, y: arrays, lists or array-likes (read by NumPy), with one sample per row; they are put on
            the model's device in its dtype once (float64 data into a float32 model is rounded to
            float32, as a float32 array would be; values beyond float32's range are refused).
        loss: a name or an instance; default softmax_cross_entropy, whose float target rows must
            then be one-hot or probabilities (a regression's are refused: give loss='mse'). With
            softmax_cross_entropy given, a target row of zeros (weight 0, no class) is left out of the
            accuracy, with a warning naming it; targets of zeros only are refused.
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
            and ``on_epoch_end(epoch, model, history)``. A callback may replace, insert or remove
            layers (the step plans follow: the same numbers as the eager step) but not move the
            model to another device or dtype (StateError: the data stays where fit put it); layers
            one leaves in eval mode are put back in training before the next step, with a warning.
            Observers a callback adds to ``model.observers`` (a GradientRecorder) are taken off when
            fit ends, however it ends; those the model had before fit are kept.
        checkpoint_path, checkpoint_every: write a checkpoint every N epochs (both or neither;
            the folder must exist and be writable, checked before training), and once more at
            the end when the last epoch was not written (early stop, restore_best), so the
            checkpoint holds the model returned. A checkpoint already at ``checkpoint_path``, the
            model of a run this one does not resume (``resume_from`` is another file), is refused
            before training unless ``overwrite=True``: this run could replace it by a worse one.
            One path, one run (``checkpoint.claim``): a checkpoint another run (process) writes
            there while this one trains is kept, and this run stops at its next write
            (CheckpointError; the model holds the whole epochs). ``checkpoint_path`` may be a
            ``Claim`` taken earlier (what the path held then is what this run may replace). With
            ``comm`` rank 0 alone writes it, so it is checked there alone and every rank stops
            alike with rank 0's error (another rank may see another file system).
        checkpoint_extra: a JSON-able dict kept in every checkpoint's extras (e.g. the feature
            scaling a model needs to predict raw data); checked before training; its keys may
            not be the training state's own (epochs_done, seed, history).
        restore_best: keep a host copy of the parameters, buffers and optimizer state of this
            run's best epoch (validation metric, else validation loss, else training loss: the
            criterion of ``patience``) and put it back at the end, also after Ctrl-C;
            ``history.best_epoch`` names it.
        resume_from: a checkpoint written by fit(); the run continues as if never stopped
            (``epochs`` counts every epoch of the run: fewer than the checkpoint has done is refused).
            A ``batch_size``, ``shuffle`` or ``seed`` other than the saved run's (kept in its
            checkpoints), or other data, makes other batches: warned of (GpubpWarning), as the
            run then does not continue the saved one.
            The saved optimizer continues unless ``optimizer`` says otherwise: a name must
            name the saved kind; an instance of the saved kind keeps its own hyperparameters
            and receives the saved step count and slots; another kind is refused.
        comm: a communicator for data parallelism (``gpubp.distributed.mpi.world()``, under
            ``mpiexec -n N``): every rank calls fit with the same arguments (refused on every rank,
            naming the first that differs, before training: the model, optimizer, data, validation
            data and the settings that decide the steps); each trains on its share of every global
            batch of ``batch_size``, gradients are summed weighted by share (the single-process
            step), an error on one rank (a file it lacks, its callback) stops all ranks alike, and
            only rank 0 shows progress and writes checkpoints.
        plan: run each step into buffers allocated once (``gpubp.plan``: one plan per batch
            shape, the same numbers as the eager step, Dropout's masks and BatchNorm's running statistics
            included); False, or a layer
            without ``out=`` buffers (a user's layer), runs the eager step.
        cuda_graph: on a CUDA device, capture each plan's whole step (update included) as one
            CUDA graph and replay it per batch (``gpubp.plan.graph``); needs a plannable model,
            no ``comm``; ``on_batch_end`` then comes after the update.

    A NaN/Inf epoch loss, parameter or optimizer slot (also one a callback wrote) raises
    NumericalError after restoring the parameters and the optimizer state from the start of that
    epoch (with ``restore_best``, of the best epoch so far); the error's ``history`` holds the
    epochs trained until then. Ctrl-C returns the
    history of the whole epochs so far (one whose validation was cut short is left out) with
    ``interrupted=True`` (the model keeps the updates made until then, unless they are not
    finite: then it holds the start of that epoch). A Ctrl-C during a step takes effect when the
    step is done, so the model holds whole steps (a second Ctrl-C stops at once; see
    ``gpubp.train.interrupts``). With ``comm``, a Ctrl-C that reaches any rank stops every rank at
    the end of the same step (a second one aborts every rank).

    A machine failure stops the run, keeping the model: out of memory (OutOfMemoryError), a
    checkpoint that cannot be written (CheckpointError: a full disk, its folder gone or made
    read-only; the checkpoint already there is kept whole), or another gpubp error (an EpochLog
    line that cannot be written). An epoch cut short is undone, so the model holds the whole
    epochs in the error's ``history`` (with ``restore_best``, the best one's weights), and the
    message says what the model and the checkpoint hold. A callback's own error (any exception) is
    raised as it is, with that ``history`` too, the epoch it cut short undone. A callback stops the
    run after the epoch by setting ``history.stopped`` to a string saying why.
    """
    _checks.instance("fit: model", model, Sequential)
    _check_cuda_graph(cuda_graph, model, plan, comm)  # the same on every rank: no guard needed
    _check_comm(comm)
    as_given = _AsGiven(model, optimizer, resume_from)  # a refused run leaves what resume_from loaded undone
    with as_given, guard(comm, "checking fit's arguments"):  # what one rank alone refuses (its file, flag) stops all
        defaulted, loss = loss is None, get_loss("softmax_cross_entropy" if loss is None else loss)
        _warn_sigmoid_twice(model, loss, "fit")
        epochs = _checks.integer("fit: epochs", epochs, 1)
        batch_size = _checks.integer("fit: batch_size", batch_size, 1)
        lr = None if lr is None else _checks.number("fit: lr", lr, low=0, low_open=True)
        seed = None if seed is None else _checks.integer("fit: seed", seed, 0)
        tol = None if tol is None else _checks.number("fit: tol", tol, low=0)
        patience = None if patience is None else _checks.integer("fit: patience", patience, 1)
        shuffle, restore_best, plan, overwrite = (_checks.flag(f"fit: {name}", value) for name, value in (
            ("shuffle", shuffle), ("restore_best", restore_best), ("plan", plan), ("overwrite", overwrite)))
        progress = None if progress is None else _checks.flag("fit: progress", progress,
                                                              " or None (a terminal decides)")
        callbacks = checked_callbacks(callbacks)
        checkpoint_every, claim = _checkpointing(checkpoint_path, checkpoint_every, resume_from, overwrite, comm)
        checkpoint_extra = _checkpoint_extra(checkpoint_extra)
        Xd, yd = _prepare(model, loss, X, y, "fit")
        _one_sample_batch(model, Xd, batch_size)
        val = _validation(model, loss, validation_data)
        if defaulted:  # a regression's targets would train a classifier on class weights
            refuse_regression_targets(yd, "fit")
            if val:
                refuse_regression_targets(val[1], "fit", "validation_data y")
        for ys, name in ((yd, "y"), (val[1] if val else None, "validation_data y")):
            if ys is not None:  # a row of zeros has no class: left out of the accuracy, said once
                unlabelled_rows(model, loss, ys, "fit", name, warn=comm is None or comm.is_root)
        targets = CheckedTargets(model, loss, [(Xd, yd, ("X", "y"))]
                                 + ([(*val, ("validation_data X", "validation_data y"))] if val else []))
        remember_range(model, Xd)  # what predict and evaluate hold new images to, and validation's now
        if comm is None or comm.is_root:  # one warning of a run, not one per rank
            for name, images in (("X", Xd), ("validation_data X", val[0] if val else None)):
                if images is not None and not warn_raw_pixels(model.backend, images, "fit", name) and images is not Xd:
                    check_range(model, images, "fit", name)
        data = data_fingerprint(model.backend, Xd, yd)
        history, start = History(metric_name=_metric_name(loss)), 0
        batching = {"batch_size": batch_size, "shuffle": shuffle}  # kept in the checkpoints; a resumed run's compared
        if resume_from is not None:
            history, start, optimizer, saved_seed = _resume(resume_from, model, optimizer, epochs, data,
                                                            {**batching, "seed": seed})
            seed = saved_seed if seed is None else seed
        else:
            optimizer = get_optimizer("adam" if optimizer is None else optimizer)
        history.data = data  # what this run trains on, kept in its checkpoints
        sched = _run_lr(model, optimizer, lr, schedule, epochs, history, start)
        _refuse_nonfinite_start(model, optimizer)
        settings = None if comm is None else _run_settings(
            loss, epochs, batch_size, shuffle, seed, tol, patience, restore_best, checkpoint_every, sched, start,
            history)
    # up to the first step, a failure or a Ctrl-C on one rank stops every rank alike (not one rank alone
    # while the others wait in a collective)
    with guard(comm, "starting the run"):
        if comm is not None:  # every rank holds the same data and settings, and starts from rank 0's model and optimizer
            to_host = model.backend.to_numpy
            with as_given:
                comm.check_consistent(model, optimizer, facts={"fit settings": settings},
                                      data=(to_host(Xd), to_host(yd)), validation=val and tuple(map(to_host, val)))
            comm.broadcast_training_state_(model, optimizer)
        seed = 0 if seed is None else seed
        root = comm is None or comm.is_root
        bar, snapshot = Progress(epochs, progress if root else False), None
        keeper = _BestKeeper(optimizer) if restore_best else None
        if keeper is not None and start:
            keeper.resumed(model, history, resume_from)
        plans = PlanCache(model, loss, optimizer, cuda_graph) if plan else None  # step plans, one per batch shape
    marks, epoch = None, start  # marks: the history's lengths at the start of an epoch not yet whole
    given = list(model.observers)  # what a callback adds (GradientRecorder) is taken out however fit ends
    try:
        # every label was checked once, above (no sync per batch); NaN/Inf is checked after each epoch and
        # reported as a NumericalError, so NumPy's floating-point warnings are noise (CuPy gives none);
        # a Ctrl-C during a step is raised when the step is done (interrupts.deferred)
        begun, ended = (_written_by(callbacks, hook) for hook in ("on_epoch_begin", "on_epoch_end"))  # NaN's cause
        with loss.targets_checked(), np.errstate(all="ignore"), deferred(comm=comm) as steps:
            for epoch in range(start, epochs):
                if sched is not None:
                    optimizer.lr = _lr_fits(_scheduled_lr(sched, epoch), model, f" (the schedule's, epoch {epoch + 1})")
                snapshot = _snapshot(model, optimizer)  # finite: checked at the start or after the last epoch
                marks, history.stopped = _marks(history), None  # a callback may say why the run stops
                # with comm, what runs on each rank alone between the steps' collectives (callbacks, validation,
                # the progress line) is guarded: a failure on one rank stops every rank (one all-reduce an epoch)
                with guard(comm, f"the start of epoch {epoch + 1}"):
                    _call(callbacks, "on_epoch_begin", epoch, model)
                    if begun:  # one sync an epoch, with such callbacks only
                        _refuse_nonfinite_end(model, optimizer, snapshot, epoch, begun)
                    _keep_flat(model)
                _run_epoch(model, loss, optimizer, Xd, yd, batch_size, shuffle, seed, epoch, history,
                           callbacks, snapshot, comm, plans, first=epoch == start, steps=steps, targets=targets)
                steps.running = True  # the epoch's record (its --log line too) is whole before a Ctrl-C stops fit
                with guard(comm, f"the end of epoch {epoch + 1}"):
                    targets.check()  # a callback after the last step changed the layers?
                    if val is not None:
                        _validate(model, loss, val, batch_size, history, marks)
                    bar.epoch(epoch, history.summary(epoch))
                    _call(callbacks, "on_epoch_end", epoch, model, history)
                    checked_stop(history)
                    _refuse_nonfinite_end(model, optimizer, snapshot, epoch, ended)  # the epoch's own check passed
                steps.end()
                if comm is not None and hasattr(comm, "check_alike"):  # a value written on some ranks only
                    comm.check_alike(model, optimizer, f"epoch {epoch + 1}")
                marks = None  # the epoch is whole (on every rank): a failure from here on keeps it
                if keeper is not None:
                    with guard(comm, f"keeping epoch {epoch + 1} as the best"):
                        keeper.on_epoch_end(epoch, model, history)  # after that check: a best epoch is finite
                if checkpoint_every and (epoch + 1) % checkpoint_every == 0:
                    with guard(comm, f"writing the checkpoint of epoch {epoch + 1}"):  # rank 0's failure stops all
                        if root:
                            _write_checkpoint(claim, model, optimizer, history, (seed, batching), checkpoint_extra)
                history.stopped = agreed_stop(history, comm) or _stop_reason(history, tol, patience)
                if history.stopped:
                    break
    except KeyboardInterrupt:
        history.interrupted = True
        if snapshot is not None and _nonfinite(model, optimizer):
            _restore(model, optimizer, snapshot)
    except NumericalError as exc:  # restore_best keeps its promise here too; the epochs done go with the error
        _roll_back(model, optimizer, history, snapshot, marks)
        if keeper is not None and keeper.restore(model, history):
            exc = NumericalError(f"{exc}; restore_best then put back the best epoch, {history.best_epoch}")
        exc.history = history
        raise exc from None
    except Exception as exc:  # out of memory, a checkpoint or log not written, a callback's own error, ...
        cut = f" in epoch {epoch + 1}" + (" (its part done is undone)" if marks is not None else "")
        try:
            _roll_back(model, optimizer, history, snapshot, marks)
        except Exception:  # a model a callback moved or emptied cannot take its snapshot back: said as it is
            raise exc from None
        raise _stopped(exc, model, history, keeper, "training stopped" + cut) from None
    finally:
        bar.close()
        _drop_added_observers(model, given)
    return _finish(model, optimizer, history, keeper, (seed, batching), root and claim, checkpoint_every,
                   checkpoint_extra, comm)


def _drop_added_observers(model, given):
    """The model's observers without those added during the run (a callback's, such as a GradientRecorder
    attached in on_epoch_begin that an early stop, error or Ctrl-C kept from detaching itself), which would
    otherwise go on watching every later forward and backward; those it was given are kept."""
    observers = getattr(model, "observers", None)
    if observers is None:
        return
    kept = [o for o in observers if any(o is g for g in given)]
    if len(kept) != len(observers):
        observers[:] = kept


def _keep_flat(model):
    """The model's parameters kept in its flat buffer: a parameter array replaced by assignment
    (``layer.params["W"] = W2``, between fits or in a callback) leaves it, and the optimizer then
    updates parameter by parameter (one launch each) until the model is made flat again. Once per epoch."""
    if getattr(model, "flat", False) is None and hasattr(model, "flatten_") and model.parameters():
        model.flatten_()  # the current arrays' values into a new flat buffer; the optimizer rebinds


def _validate(model, loss, val, batch_size, history, marks):
    """The validation loss and metric of the epoch just trained, added to ``history``. Ctrl-C here
    drops that epoch's training records too (back to ``marks``, taken at the epoch's start), so the
    history an interrupted run returns (and a checkpoint may keep) holds whole epochs, its lists
    indexed alike (as after a Ctrl-C during the epoch's steps)."""
    try:
        v_loss, v_metric = _evaluate(model, loss, *val, batch_size=max(batch_size, 1024), what="fit",
                                     names=("validation_data X", "validation_data y"))
    except KeyboardInterrupt:
        _truncate(history, marks)
        raise
    history.add_validation(v_loss, v_metric)  # NaN before it for epochs without validation (a resumed run)
