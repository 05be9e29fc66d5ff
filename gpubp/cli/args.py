"""The one flag vocabulary of the ``gpubp`` command: value types, and the flags that
several commands share, their choices read from the library's own registries."""
from __future__ import annotations

import argparse
import math
import os

import numpy as np

from .._checks import writable_target
from ..backend import default_device
from ..checkpoint import read_metadata, same_file
from ..errors import CheckpointError, InvalidValueError
from ..nn import ACTIVATIONS
from ..losses import LOSSES, BinaryCrossEntropy, SoftmaxCrossEntropy
from ..optim import OPTIMIZERS
from ..schedules import SCHEDULES
from .paths import file_path, output_file  # noqa: F401 (the path types, part of the vocabulary)

HIDDEN_ACTIVATIONS = [a for a in ACTIVATIONS if a != "identity"]


def whole_number(low):
    """argparse type: an integer >= ``low``."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {low}, got {text!r}")
        return value
    return parse


positive_int, nonnegative_int = whole_number(1), whole_number(0)


def positive_float(text):
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def column(text):
    """argparse type: a CSV column name, not empty (``--target ""`` was taken for the last column)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a column name, got {text!r}")
    return text


def widths(text):
    """argparse type: comma-separated layer widths such as ``64,64`` (empty: none; an empty width
    between commas, ``64,,64`` or ``,,``, is refused, not read as fewer layers)."""
    if not text.strip():
        return []
    try:
        return [positive_int(w) for w in text.split(",")]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected widths >= 1 separated by commas, e.g. 64,64; got {text!r}") from None


class _DefaultText(str):
    """A default string, told apart from the same text given on the command line (``given``)."""


class _DefaultList(list):
    """A default list (e.g. widths), told apart from one given; shown as ``128,64`` in --help."""

    def __str__(self):
        return ",".join(map(str, self))


class _DefaultInt(int):
    """A default whole number (e.g. --seed), told apart from the same number given."""


class _DefaultFloat(float):
    """A default number (e.g. --val-split), told apart from the same number given."""


MARKS = {list: _DefaultList, int: _DefaultInt, float: _DefaultFloat, str: _DefaultText}


def marked(value):
    """``value`` as a default that ``given`` recognises: argparse keeps a non-string default as it
    is, and a string default of a flag without ``type`` too."""
    return MARKS[type(value)](value)


def given(args, name) -> bool:
    """Whether the flag ``name`` was given on the command line (its default was ``marked``, or None)."""
    value = getattr(args, name)
    return value is not None and not isinstance(value, tuple(MARKS.values()))


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every default shown, ``(default: ...)``; none for flags without a value (None, False) or
    whose help already says it."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.default is argparse.SUPPRESS \
                or "default:" in (action.help or ""):  # a help that states its default in words
            return action.help
        return super()._get_help_string(action)


def add_device(p, dtype="float32"):
    """``--device``, and ``--dtype`` unless ``dtype`` is None (a command fixing its own)."""
    p.add_argument("--device", default="auto",
                   help="auto (a working CUDA GPU, else the CPU; $GPUBP_DEVICE overrides auto), "
                        "cpu, gpu or cuda:N")
    if dtype:
        p.add_argument("--dtype", default=marked(dtype), choices=["float32", "float64"], help="floating-point type")


def device_spec(args) -> str:
    """The device asked for: ``--device``, with ``auto`` deferring to $GPUBP_DEVICE."""
    return default_device(check=True) if args.device in (None, "auto") else args.device


def dtype(args):
    """The ``--dtype`` given, else None: the dtype a device spec names (``cpu/float64``, also in
    $GPUBP_DEVICE), or float32 when it names none."""
    return args.dtype if given(args, "dtype") else None


def add_hidden(p, default):
    """``--hidden`` (alias ``--layers``): the hidden layer sizes of an MLP."""
    p.add_argument("--hidden", "--layers", dest="hidden", type=widths, default=default,
                   help="hidden layer sizes, comma-separated")


def add_widths(p, default):
    """``--widths``: every layer width, input first and output last."""
    p.add_argument("--widths", type=widths, default=default,
                   help="every layer width, input first and output last, comma-separated")


def add_batch_size(p, default):
    p.add_argument("--batch-size", type=positive_int, default=default, help="samples per step")


def add_model(p, activation, loss=None, losses=None):
    """``--activation`` (and ``--loss``) with the registries' names as choices."""
    p.add_argument("--activation", default=activation, choices=HIDDEN_ACTIVATIONS, help="hidden activation")
    if loss:
        p.add_argument("--loss", default=loss, choices=losses or sorted(LOSSES), help="loss function")


def add_training(p, optimizer, lr):
    """``--optimizer``, ``--lr`` and ``--seed``."""
    p.add_argument("--optimizer", default=optimizer, choices=list(OPTIMIZERS), help="update rule")
    p.add_argument("--lr", type=positive_float, default=lr, help="learning rate")
    add_seed(p, "initial weights and data")  # parity's batches are the rows in order


def add_seed(p, fixes="initial weights, data and batch order"):
    p.add_argument("--seed", type=nonnegative_int, default=marked(0), help=f"fixes {fixes} (a whole number >= 0)")


def add_schedule(p):
    p.add_argument("--schedule", default="constant", choices=list(SCHEDULES), help="learning-rate schedule")


def fraction(text):
    """argparse type: a number in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}")
    return value


def synthetic(loss, n, n_in, n_out, seed):
    """Seeded data ``(X, y)`` fit for ``loss``: class labels, 0/1 targets, or real targets."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    if isinstance(loss, SoftmaxCrossEntropy):
        return X, rng.integers(0, n_out, size=n)
    if isinstance(loss, BinaryCrossEntropy):
        return X, rng.integers(0, 2, size=(n, n_out)).astype(float)
    return X, rng.normal(size=(n, n_out))


def add_saved_model(p, data_help):
    """The arguments of a command run on a saved model: MODEL, DATA, --batch-size, --device."""
    p.add_argument("model", metavar="MODEL", type=file_path, help="a checkpoint written by gpubp train --save")
    p.add_argument("data", metavar="DATA", type=file_path, help=data_help)
    add_batch_size(p, 1024)
    add_device(p, dtype=None)


def add_overwrite(p, outputs, kind):
    """``--overwrite``: let ``outputs`` (e.g. ``--out``) replace a file gpubp did not write there
    (``_checks.output_path``); ``kind`` (what it writes) is replaced anyway, a rerun's own output."""
    p.add_argument("--overwrite", action="store_true",
                   help=f"let {outputs} replace a file that is not {kind} (kept otherwise: refused before any work)")


def is_checkpoint(path) -> bool:
    """Whether ``path`` holds a readable gpubp checkpoint."""
    try:
        read_metadata(path)
    except CheckpointError:
        return False
    return True


def distinct_files(outputs, inputs=None, allowed=()):
    """Refuse, before any work, an output path that names one of the command's inputs or another
    output (``--out data.csv`` would replace the data read, ``--log model.npz`` the model), or
    that holds a file of another kind than the output (``--out`` over a checkpoint, ``--save``
    over data: a checkpoint is what --save writes, and nothing else is). ``outputs`` and
    ``inputs`` map flag names to paths (None: not given), ``allowed`` lists (output, input)
    pairs that may share a file, e.g. ("--save", "--resume"). Each output's own check
    (``writable_target``, ``check_plot_path``) is the caller's: a missing folder is left to it."""
    outs = [(n, p) for n, p in outputs.items() if p]
    inputs = inputs or {}
    for i, (name, path) in enumerate(outs):
        for other, source in [*outs[:i], *((n, p) for n, p in inputs.items() if p)]:
            if (name, other) not in allowed and same_file(path, source):
                what = f"the file {other} reads" if other in inputs else f"the output of {other}"
                raise InvalidValueError(f"{name} {path} is also {other}: writing it would replace {what}; "
                                        f"give another path")
    for name, path in outs:
        path = writable_target(name, path, create_parents=True)  # through a link, the file it names
        if os.path.isfile(path) and os.path.getsize(path) and is_checkpoint(path) != (name == "--save"):
            what = "a gpubp checkpoint" if name != "--save" else "a file that is not a gpubp checkpoint"
            raise InvalidValueError(f"{name} {path} is {what}, which writing it would replace; give another path "
                                    f"(or remove that file first)")
