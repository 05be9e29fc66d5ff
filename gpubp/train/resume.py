"""Resume state: the only writer (``save_training``) and reader (``resume``) of what a
checkpoint holds for ``fit(resume_from=...)``: epochs done, seed, history, the settings that
decide the batches (batch size, shuffle), optimizer."""
from __future__ import annotations

import hashlib
import os
import warnings

import numpy as np

from .. import _checks, checkpoint
from ..errors import CheckpointError, GpubpError, GpubpWarning, InvalidValueError
from ..history import History
from ..optim import get_optimizer, optimizer_from_state


STATE_KEYS = ("epochs_done", "seed", "history", "batching")  # the training state in a checkpoint's extras
BATCHING = {"batch_size": "a whole number >= 1", "shuffle": "True or False"}  # fit's settings that decide the batches


def save_training(path, model, optimizer, history, seed, /, batching=None, **extra) -> str:
    """Checkpoint ``model`` and ``optimizer`` with what ``fit(resume_from=path)`` reads back
    (epochs done, seed, history, and ``batching``: the run's ``{"batch_size": ..., "shuffle": ...}``,
    compared with the resumed run's; this module is the only writer and reader of those) and ``extra``
    (any keys but those four, which it refuses rather than overwrite). What ``resume`` would
    refuse is refused here, before a checkpoint is replaced by one no run could resume from."""
    refuse_state_keys(extra)
    if not isinstance(history, History):
        raise InvalidValueError(f"save_training: history must be a gpubp History, got a {type(history).__name__}")
    seed = None if seed is None else _checks.integer("save_training: seed", seed, 0)
    state = {"epochs_done": history.epochs, "seed": seed, "history": History.from_dict(history.as_dict()).as_dict()}
    if batching is not None:
        state["batching"] = _batching(batching, "save_training: batching")
    return checkpoint.save(path, model, optimizer, extra={**extra, **state})


def held_at(path) -> str:
    """What the checkpoint at ``path`` holds, in words (said after a write to it failed)."""
    if not os.path.lexists(path):
        return f"no checkpoint is at {path}"
    try:
        done = (checkpoint.read_metadata(path).get("extra") or {}).get("epochs_done")
    except (GpubpError, OSError):
        return f"{path} keeps what it held"
    return f"{path} keeps " + ("the model it held" if done is None else f"the checkpoint of epoch {done}")


def refuse_overwrite(path, resume_from, name, resume, allow) -> None:
    """Refuse, before any training, a run's checkpoint ``path`` (given as ``name``) that already holds
    a trained model which this run does not continue (``resume_from`` is another file, or None): the
    work of another run, which this one would replace, maybe by a worse model. ``resume`` says how to
    continue it (a template of ``{path}``), ``allow`` how to replace it anyway (``overwrite=True``, ``--overwrite``)."""
    if not os.path.isfile(path) or resume_from is not None and checkpoint.same_file(path, resume_from):
        return
    try:
        meta = checkpoint.read_metadata(path)
    except CheckpointError:
        return  # not a checkpoint: the writer's own check (checkpoint.target) refuses it
    done = (meta.get("extra") or {}).get("epochs_done")
    what = ", ".join(part for part in (f"{len(meta.get('architecture') or ())} layers",
                                       done is not None and f"{done} epoch(s) trained",
                                       meta.get("created") and f"saved {meta['created']}") if part)
    raise InvalidValueError(f"{name}: {path} already holds a trained model ({what}), which this run would "
                            f"replace; it is kept: give another path, continue that run "
                            f"({resume.format(path=path)}), or pass {allow} to replace it")


def _batching(batching, name) -> dict:
    """``batching`` checked: a dict of ``batch_size`` (a whole number >= 1) and ``shuffle`` (a flag)."""
    if not isinstance(batching, dict) or set(batching) != set(BATCHING):
        raise InvalidValueError(f"{name} must be a dict of {', '.join(f'{k} ({v})' for k, v in BATCHING.items())}, "
                                f"got {batching!r:.80}")
    return {"batch_size": _checks.integer(f"{name} batch_size", batching["batch_size"], 1),
            "shuffle": _checks.flag(f"{name} shuffle", batching["shuffle"])}


def refuse_state_keys(extra):
    """The one check that extras given to a checkpoint of fit (``checkpoint_extra``,
    ``save_training``'s keywords) leave the training state's keys alone."""
    clash = sorted(set(extra) & set(STATE_KEYS))
    if clash:
        raise InvalidValueError(f"checkpoint extra may not use the key(s) {clash}: a checkpoint of fit keeps its "
                                f"training state under {list(STATE_KEYS)}; rename them")


def data_fingerprint(backend, X, y) -> str:
    """``"<N> samples, <hash>"`` of training data on ``backend``: its number of samples and a hash of
    up to about 4096 evenly spaced samples and their targets, read as float32 (so the same data
    in a float64 run has the same fingerprint)."""
    step = max(1, X.shape[0] // 4096)
    digest = hashlib.sha1()
    for a in (X[::step], y[::step]):
        digest.update(np.ascontiguousarray(backend.to_numpy(a), dtype=np.float32).tobytes())
    return f"{X.shape[0]} samples, {digest.hexdigest()[:12]}"


def _resume(path, model, requested, epochs, data=None, batching=None):
    """(history, epochs done, optimizer, seed) saved at ``path``, the parameters loaded into
    ``model``. Every conflict is refused before the model is touched, also a run asked for fewer
    epochs in all than the checkpoint has done (``epochs`` counts them all, not those still to run).
    A run with no epoch left to train, on other data (``data``, this run's ``data_fingerprint``)
    than the saved run's, or in other batches (``batching``, this run's batch_size, shuffle and seed,
    where the checkpoint keeps them), is warned of: it does not continue the saved run."""
    meta = checkpoint.read_metadata(path)
    history, done, seed, saved_batching = training_state(meta.get("extra"), path)
    if history.interrupted:  # saved after Ctrl-C: the weights hold part of the next epoch
        warnings.warn(f"fit: resume_from={path} was saved after Ctrl-C in epoch {done + 1}: its weights hold "
                      f"part of that epoch, which the resumed run trains in full again (so not the numbers of "
                      f"an uninterrupted run; a checkpoint written at an epoch's end, checkpoint_every, gives "
                      f"those)", GpubpWarning, stacklevel=3)
        history.interrupted = False  # this run is not (yet): it writes its checkpoints as any other
    if done > epochs:
        raise InvalidValueError(f"fit: resume_from={path} has done {done} epochs but epochs={epochs}; epochs "
                                f"counts every epoch of the run, resumed ones included: give epochs > {done} "
                                f"to train on")
    saved_kind = _saved_optimizer_kind(meta, model, path)
    wanted = None if requested is None else get_optimizer(requested)
    if wanted is not None and saved_kind is not None and \
            (type(wanted).__name__, tuple(wanted.slots)) != saved_kind:
        raise InvalidValueError(
            f"fit: resume_from={path} continues a {saved_kind[0]} run (slots {list(saved_kind[1])}) but "
            f"optimizer={requested!r} asks for {type(wanted).__name__} (slots {list(wanted.slots)}); "
            f"leave optimizer out to continue with the saved one, or start a new run without resume_from")
    ck = checkpoint.load_into(path, model)
    if data is not None and history.data is not None and data != history.data:
        warnings.warn(f"fit: resume_from={path} was trained on other data ({history.data}) than this run's "
                      f"({data}), so the resumed run does not continue it; give the saved run's data to continue "
                      f"it", GpubpWarning, stacklevel=3)
    if done < epochs:
        _warn_other_batches(path, saved_batching, seed, batching)
    if history.best_epoch is not None and history.best_epoch != done and done < epochs:
        warnings.warn(f"fit: resume_from={path} holds epoch {history.best_epoch}'s weights, the best one that "
                      f"restore_best put back, not epoch {done}'s: the resumed run continues from those (not the "
                      f"numbers of a run that went on from epoch {done})", GpubpWarning, stacklevel=3)
    if done == epochs:
        warnings.warn(f"fit: resume_from={path} has done {done} epochs and epochs={epochs}, so nothing is "
                      f"trained; epochs counts every epoch of the run, resumed ones included: give epochs > "
                      f"{done} to train more", GpubpWarning, stacklevel=3)
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


def _warn_other_batches(path, saved, saved_seed, given):
    """Warn when this run's ``given`` batching (``batch_size``, ``shuffle`` and its ``seed``) differs
    from the ``saved`` run's (None: a checkpoint from before batching was kept, compared on nothing),
    naming each setting's saved and given value."""
    if saved is None or given is None:
        return
    saved = {**saved, "seed": saved_seed}
    names = ("batch_size", "shuffle") + (("seed",) if saved["shuffle"] and given["shuffle"] else ())
    other = [f"{k}={given[k]!r} (saved: {saved[k]!r})" for k in names
             if saved[k] is not None and given.get(k) is not None and given[k] != saved[k]]
    if other:
        warnings.warn(f"fit: resume_from={path} was trained in other batches than this run's: {', '.join(other)}; "
                      f"the resumed run does not continue it (give the saved values, or leave seed out, to continue "
                      f"it)", GpubpWarning, stacklevel=4)


def training_state(extra, path):
    """(history, epochs done, seed, batching or None) from a checkpoint's ``extra``, each checked
    (fit's ``resume_from`` and ``gpubp train --resume`` read them through this one check)."""
    if not isinstance(extra, dict) or "epochs_done" not in extra:
        raise CheckpointError(f"{path} holds no training state (epochs done) to resume from")
    try:
        done = _checks.integer("epochs_done", extra["epochs_done"], 0)
        seed = extra.get("seed")
        seed = None if seed is None else _checks.integer("seed", seed, 0)
        history = History.from_dict(extra.get("history"))
        batching = extra.get("batching")  # absent from checkpoints written before it was kept
        batching = None if batching is None else _batching(batching, "batching")
    except GpubpError as exc:
        raise CheckpointError(f"{path}: damaged training state: {exc}") from None
    if history.epochs != done:
        raise CheckpointError(f"{path}: damaged training state: epochs_done is {done} but the history "
                              f"holds {history.epochs} epochs")
    return history, done, seed, batching
