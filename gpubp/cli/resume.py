"""What ``gpubp train --resume`` keeps of the saved run: its model kind and layers, loss, seed,
validation split, schedule, batch size, optimizer and built-in dataset become the command's;
a flag given that contradicts them is refused, before the data is read."""
from __future__ import annotations

import os
import warnings

from .. import _checks, checkpoint
from ..errors import CheckpointError, GpubpError, GpubpWarning, InvalidValueError
from ..network import mlp
from ..optim import get_optimizer
from ..schedules import SCHEDULES
from ..train.resume import training_state
from . import args as flags
from .data_record import BUILT_IN, saved_record, unrecorded

KINDS = {"mlp": "an MLP", "cnn": "a CNN"}


def check_model_flags(args):
    """The MLP's flags are refused with the CNN, which has its own fixed layers."""
    if args.model == "cnn" and flags.given(args, "model"):
        for name in ("hidden", "activation"):
            if flags.given(args, name):
                raise InvalidValueError(f"--{name} shapes the MLP; --model cnn has fixed layers "
                                        f"(Conv-ReLU-Pool-Conv-ReLU-Pool-Dense): leave --{name} out")


def ahead_of(args, history, resumed) -> bool:
    """Whether --save is the --resume checkpoint, unchanged since this run read it, and the run
    has gone past it by whole epochs (so keeping it would throw those epochs away)."""
    done = resumed.get("epochs_done")
    try:
        return done is not None and history.epochs > done and os.path.samefile(args.save, args.resume) \
            and checkpoint.read_metadata(args.save).get("extra", {}).get("epochs_done") == done
    except (OSError, GpubpError):
        return False


def continue_saved(args, saved):
    """``args`` take the kind, loss, seed, validation split, schedule, batch size and built-in
    dataset of the resumed run; an --epochs it has passed, and a --model, --hidden, --activation,
    --loss, --seed, --val-split, --schedule, --batch-size, --optimizer or --dataset given that it
    contradicts, are refused (the saved run continues as if never stopped)."""
    extra = saved.metadata.get("extra", {})
    if extra.get("epochs_done") is None:
        raise InvalidValueError(f"{args.resume} holds a model but no training run to continue (it was written by "
                                f"checkpoint.save, not by gpubp train --save or save_training)")
    info, (history, done, _, batching), run = saved_record(saved.metadata, args.resume), \
        training_state(extra, args.resume), run_record(extra, args.resume)  # each checked before it is used
    if args.epochs < done:
        raise InvalidValueError(f"--epochs {args.epochs}, but {args.resume} has done {done} epochs: --epochs counts "
                                f"every epoch of the run, resumed ones included; give --epochs > {done}")
    _continue_architecture(args, saved.model)
    batch_size = (batching or {}).get("batch_size", run.get("batch_size"))  # run's: older checkpoints
    for name, value in (("loss", info.get("loss")), ("seed", extra.get("seed")), ("val_split", info.get("val_split")),
                        ("schedule", run.get("schedule")), ("batch_size", batch_size)):
        _same(args, name, value, f"was trained with {_flag(name)} {value}")  # the same samples, steps and rates
    if run.get("schedule") is None:
        _unrecorded_schedule(args, history.lr)
    unrecorded(info, args.resume, args.val_split)
    if args.optimizer and saved.optimizer:
        wanted = get_optimizer(args.optimizer)
        if (type(wanted), wanted.hyper) != (type(saved.optimizer), saved.optimizer.hyper):
            raise InvalidValueError(f"--optimizer {args.optimizer}, but {args.resume} continues {saved.optimizer}; "
                                    f"leave --optimizer out to continue it (--lr sets its learning rate)")
        args.optimizer = None  # the name restates the saved optimizer: it continues, hyperparameters and all
    if not info:  # fit's in Python, or checkpoint.save's with a training state: what was it trained on?
        _unrecorded_data(args)
    source = info.get("source")
    if source and not args.data:
        if source not in BUILT_IN:
            raise InvalidValueError(f"{args.resume} was trained on {source}: give --data PATH (that file, or one "
                                    f"with the same columns) to continue it")
        _same(args, "dataset", source, f"was trained on {source}")


def _unrecorded_schedule(args, rates):
    """A run saved without gpubp train's record of its schedule (fit's in Python) continues at its one
    rate ("constant", not --model's default schedule); one whose rates changed needs --schedule named."""
    if flags.given(args, "schedule"):
        return
    if len(set(rates)) > 1:
        raise InvalidValueError(f"{args.resume} keeps no record of its learning-rate schedule (it was not saved by "
                                f"gpubp train) and its rates changed from epoch to epoch ({rates[0]:g} to "
                                f"{rates[-1]:g}): give --schedule {'|'.join(SCHEDULES)}, the one it was trained with")
    args.schedule = "constant"


def _unrecorded_data(args):
    """A run saved without gpubp train's data record continues on the data named (--data read as it
    is, unscaled, as predict reads it for such a model), never on the default digits unasked."""
    if not args.data and not flags.given(args, "dataset"):
        raise InvalidValueError(f"{args.resume} keeps no record of the data it was trained on (it was not saved by "
                                f"gpubp train): give that data, --data PATH (read as it is, unscaled) or --dataset "
                                f"NAME")
    if args.data:
        warnings.warn(f"{args.resume} was not saved by gpubp train, so it keeps no record of how its training data "
                      f"was read (columns, classes, scaling): {args.data} goes into the model as it is", GpubpWarning)


def run_record(extra, path) -> dict:
    """The run record (``extra["run"]``: the schedule; an older gpubp's batch size) of the checkpoint
    ``path``, checked ({} when there is none); a damaged one is a CheckpointError naming it."""
    run = extra.get("run")
    if run is None:
        return {}
    try:
        if not isinstance(run, dict):
            raise InvalidValueError(f"it is a {type(run).__name__}, not a dict")
        if run.get("schedule") is not None and run["schedule"] not in SCHEDULES:
            raise InvalidValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {run['schedule']!r:.60}")
        if run.get("batch_size") is not None:
            _checks.integer("batch_size", run["batch_size"], 1)
    except GpubpError as exc:
        raise CheckpointError(f"{path}: its run record (the schedule gpubp train used) is damaged: {exc}; this "
                              f"checkpoint cannot be continued") from None
    return run


def _continue_architecture(args, model):
    """``args.model`` becomes the saved model's kind; --model, --hidden or --activation given
    that ask for another architecture are refused."""
    config = model.config()
    kind = "cnn" if config and config[0]["type"] == "Conv2D" else "mlp"
    _same(args, "model", kind, f"holds {KINDS[kind]} ({model})")
    if kind == "cnn":
        check_model_flags(args)
    elif flags.given(args, "hidden") or flags.given(args, "activation"):
        wanted = mlp(config[0]["n_in"], args.hidden, config[-1]["n_out"], args.activation, "cpu", seed=None)
        if wanted.config() != config:
            raise InvalidValueError(f"--hidden/--activation ask for an MLP of hidden widths "
                                    f"{','.join(map(str, args.hidden))} and {args.activation}, but {args.resume} "
                                    f"holds {model}; leave them out to continue it")


def _same(args, name, saved_value, what):
    """``args.<name>`` becomes ``saved_value`` (when known); a flag given that differs is refused."""
    if saved_value is None:
        return
    value = getattr(args, name)
    if flags.given(args, name) and value != saved_value:
        raise InvalidValueError(f"{_flag(name)} {value}, but {args.resume} {what}; leave {_flag(name)} out to "
                                f"continue it")
    setattr(args, name, saved_value)


def _flag(name) -> str:
    return "--" + name.replace("_", "-")
