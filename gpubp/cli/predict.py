"""``gpubp predict MODEL DATA``: a saved model's predictions for a CSV/.npz of raw features."""
from __future__ import annotations

import csv
import io
import sys
import warnings

import numpy as np

from .. import checkpoint
from .._checks import output_path, writable_target
from ..checkpoint.atomic import describe, write_atomically
from ..backend import get_backend
from ..errors import GpubpError, GpubpWarning, InvalidValueError
from ..train import predict
from ..train.resume import STATE_KEYS
from . import args as flags
from .data_record import check_record, saved_record, unrecorded
from .model_data import in_target_units, read_for_model

HELP = "predict with a saved model on a CSV/.npz of raw features (scaled as in training); CSV out"


def add_arguments(p):
    flags.add_saved_model(p, "a CSV with the training features' columns (any order), or an .npz with X")
    p.add_argument("--out", metavar="PATH", type=flags.output_file,
                   help="write the predictions here as CSV (default: print them)")
    flags.add_overwrite(p, "--out", "the predictions CSV of an earlier gpubp predict")


def load(args):
    """(model, data info) of the checkpoint ``args.model`` on ``args.device``. A model saved without
    data info (not by gpubp train) reads DATA as it is: warned of, naming the extras not read (a
    scaling kept there by ``fit(checkpoint_extra=...)`` is not applied)."""
    if not flags.is_checkpoint(args.model) and flags.is_checkpoint(args.data):
        raise InvalidValueError(f"MODEL {args.model} is not a gpubp checkpoint but DATA {args.data} is one: give the "
                                f"model first (gpubp {args.command} MODEL DATA)")
    ck = checkpoint.load(args.model, get_backend(flags.device_spec(args)))
    extra, record = ck.metadata.get("extra", {}), saved_record(ck.metadata, args.model)
    unrecorded(record, args.model)
    if not record:
        unread = sorted(set(extra) - {*STATE_KEYS, "data", "writer"})  # writer: the run's mark (checkpoint.claim)
        warnings.warn(f"{args.model} was not saved by gpubp train, so it keeps no record of how its training data "
                      f"was read (columns, classes, scaling): {args.data} goes into the model as it is"
                      + (f"; its extras {unread} are not read (a scaling kept there is not applied: give data "
                         f"scaled as in training)" if unread else ""), GpubpWarning)
    return ck.model, record


def rows(outputs, info) -> tuple[list, list]:
    """(header, rows): the predicted class and each class's probability, or the predicted values;
    a model saved without its task (not by gpubp train) is taken for a classifier, unless it has
    one output, which a softmax would make 1 whatever the input: then its raw output is shown."""
    task = info.get("task") or ("classification" if outputs.shape[1] > 1 else None)
    if task != "classification":
        name = "prediction" if task else "output"
        names = [name] if outputs.shape[1] == 1 else [f"{name}_{j}" for j in range(outputs.shape[1])]
        return names, outputs.tolist()
    classes = info.get("classes") or list(range(outputs.shape[1]))
    z = outputs - outputs.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    header = ["prediction"] + [f"p_{c}" for c in classes]
    return header, [[classes[k]] + [f"{v:.6g}" for v in row] for k, row in zip(p.argmax(axis=1), p)]


def is_predictions(path) -> bool:
    """Whether ``path`` is a CSV written by ``run``: its header is one that ``rows`` writes."""
    with open(path, newline="") as f:
        try:
            header = next(csv.reader([f.readline(1 << 16)]), [])
        except csv.Error:  # a NUL byte: not a text
            return False
    if len(header) > 1 and header[0] == "prediction" and all(c.startswith("p_") for c in header[1:]):
        return True  # a classifier's
    return any(header in ([name], [f"{name}_{j}" for j in range(len(header))]) for name in ("prediction", "output"))


def check_out(args):
    """``--out`` refused before any work: a path that cannot be written, one of the inputs, a
    file there that is not gpubp predict's CSV (unless ``--overwrite``). The file a write replaces."""
    if args.overwrite and not args.out:
        raise InvalidValueError("--overwrite lets --out replace a file; give --out PATH too, or leave --overwrite out")
    if not args.out:
        return None
    writable_target("--out", args.out)
    flags.distinct_files({"--out": args.out}, {"MODEL": args.model, "DATA": args.data})
    return output_path("--out", args.out, is_predictions, "a predictions CSV", args.overwrite)  # a link: its file


def run(args) -> int:
    out = check_out(args)
    model, info = load(args)
    X, _, _ = read_for_model(args.data, info)
    check_record(model, X, info, args.model)
    header, body = rows(in_target_units(predict(model, X, batch_size=args.batch_size), info), info)
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(body)
    if not out:
        sys.stdout.write(text.getvalue())
        return 0
    # all or nothing: a file already at --out (an earlier run's, or --overwrite) is replaced only by the whole new one
    try:
        write_atomically(out, lambda f: f.write(text.getvalue().encode()))
    except (OSError, MemoryError) as exc:  # a full disk, the folder gone or made read-only
        raise GpubpError(f"--out {args.out}: cannot write the predictions ({describe(exc)}); nothing was written "
                         f"there (a file already there is kept)") from None
    print(f"predictions: {args.out} ({len(body)} rows)")
    return 0
