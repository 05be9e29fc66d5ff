"""The data of ``gpubp train``, ``predict`` and ``evaluate``: a built-in set or your own file,
split, standardised with the training split's statistics, and described in ``info`` (kept in
the checkpoint's extras as ``data``) so a saved model reads raw files the same way."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .. import _checks
from ..datasets import Scaler, load_dataset, load_table, split
from ..errors import CheckpointError, GpubpError, GpubpWarning, InvalidValueError, ShapeError
from ..losses import LOSSES
from ..train import predict
from ..train.pixels import scale_mismatch

CNN_SHAPE = [1, 8, 8]  # the built-in digits as images
BUILT_IN = ["digits", "xor", "spirals"]  # the datasets --dataset names


@dataclass
class Data:
    X: np.ndarray
    y: np.ndarray
    val: tuple | None
    test: tuple | None
    info: dict
    name: str


def prepare(args, saved=None) -> Data:
    """Training, validation and test arrays for ``args``; ``saved`` is the ``data`` info of a
    checkpoint being resumed (its classes, features and scaling are reused, not refitted)."""
    regression = args.loss == "mse"
    if args.data:
        return _own(args, regression, saved)
    if regression:
        raise InvalidValueError("--loss mse needs --data: the built-in datasets are classification")
    if args.model == "cnn" and args.dataset != "digits":
        raise InvalidValueError(f"--model cnn reads images: of the built-in datasets only digits (8x8) is one; "
                                f"{args.dataset} has 2 features per sample (use --model mlp)")
    if args.dataset == "xor":  # 4 points: trained and tested on the same four, no validation split
        X, y, X_test, y_test = load_dataset("xor")
        val = None
    else:
        X, y, X_test, y_test = load_dataset(args.dataset, seed=args.seed)
        X, y, val = _split(X, y, args.val_split, args.seed, stratify=True)
    shape = (saved or {}).get("shape") or (CNN_SHAPE if args.model == "cnn" else [X.shape[1]])
    info = {"source": args.dataset, "target": None, "features": None, "task": "classification",
            "classes": list(range(int(y.max()) + 1)), "loss": args.loss, "scaler": None, "shape": shape,
            "val_split": args.val_split, "range": value_range(X)}
    data = Data(X, y, val, (X_test, y_test), info, args.dataset)
    return _shaped(data)


def _own(args, regression, saved):
    saved = saved or {}
    _csv_target(args.data, args.target)
    table = load_table(args.data, target=args.target or saved.get("target"), regression=regression,
                       features=_named(args.data, saved.get("features")), classes=saved.get("classes"))
    shape = _model_shape(args, table.X, saved)
    image = saved.get("image") if saved else (list(table.X.shape[1:]) if table.X.ndim == 4 else None)
    fit_shape(table.X, shape, args.data, "--data", image)
    check_range(table.X, saved, args.data, "--data")  # a resumed run's data at the scale it was trained on
    if not saved:
        _plausible_features(table, args.data)
    if table.classes and not saved.get("classes"):
        _plausible_classes(table, args.data)
    X, y, val = _split(table.X, table.y, args.val_split, args.seed, stratify=not regression)
    # a resumed run reads the data as its model learnt it: with the saved scaling, or none (built-in data, fit's)
    scaler = Scaler.from_dict(saved["scaler"]) if saved.get("scaler") else None if saved else Scaler.fit(X)
    targets = _target_scaler(y, regression, saved)
    values = saved.get("range") or value_range(table.X)  # an older record's lack: the data this run trains on
    info = {"source": str(args.data), "target": table.target, "features": table.features,
            "task": "regression" if regression else "classification", "classes": table.classes,
            "loss": args.loss, "scaler": scaler and scaler.to_dict(), "shape": shape, "val_split": args.val_split,
            **({"target_scaler": targets.to_dict()} if targets else {}), **({"image": image} if image else {}),
            **({"range": values} if values else {})}
    test = None
    if args.test:
        t = load_table(args.test, target=table.target, regression=regression,
                       features=_named(args.test, table.features), classes=table.classes)
        fit_shape(t.X, shape, args.test, "--test", image)
        check_range(t.X, info, args.test, "--test")
        test = (t.X, t.y)
    data = Data(X, y, val, test, info, str(args.data))
    return _shaped(data, scaler, targets)


def _target_scaler(y, regression, saved):
    """A regression learns its target standardised too (a price in the hundreds from outputs near 0
    takes an MLP many epochs); its outputs are turned back into the target's units when read. A
    resumed run keeps the saved scaling, and one saved without it (None) goes on without."""
    if not regression:
        return None
    if saved.get("target_scaler"):
        return Scaler.from_dict(saved["target_scaler"])
    return None if saved else Scaler.fit(y)


def value_range(X) -> list:
    """[min, max] of the training data as read (raw): what ``check_range`` holds new data to."""
    return [float(X.min()), float(X.max())]


def check_range(X, info, path, name):
    """Refuse images (warn of other data) whose values lie far outside the range the model was trained
    on (``info["range"]``): 0..255 pixels given to a model trained on 0..1 are standardised into values
    near 900 and answered with certainty, silently. Warn of images spanning a small part of it (0..1
    pixels for a model trained on 0..255). A record without a range (an older gpubp's) is not checked
    (``unrecorded`` says so)."""
    if not info.get("range") or not X.size:
        return
    (lo, hi), x_lo, x_hi = info["range"], float(X.min()), float(X.max())
    images = len(info.get("shape") or []) == 3 or bool(info.get("image"))
    seen, trained = f"its values run from {x_lo:.4g} to {x_hi:.4g}", f"the {lo:.4g} to {hi:.4g} of the training data"
    verdict, pixels = scale_mismatch((lo, hi), (x_lo, x_hi), "X")
    if verdict == "far":
        message = f"{name} {path}: {seen}, far outside {trained}{pixels}; scale them as the training data were"
        if images:
            raise InvalidValueError(message)
        warnings.warn(message + " (answers this far out are guesses)", GpubpWarning)
    elif verdict == "narrow" and images:
        warnings.warn(f"{name} {path}: {seen}, a small part of {trained}{pixels}; scale them as the training data "
                      f"were", GpubpWarning)


def unrecorded(record, path, val_split=None):
    """Say once what the data ``record`` of the checkpoint ``path``, written by an older gpubp, lacks
    and so what cannot be checked: the training data's value range (data at another scale, 0..255
    pixels for a model trained on 0..1, is read unrefused) and, for a resumed run (``val_split``, the
    one it takes), the validation split. Nothing for a record of none (a Python model's: said by its
    reader), nor the range of a resumed built-in dataset, read as it always was."""
    lacks = []
    if record and record.get("range") is None and (val_split is None or record.get("source") not in BUILT_IN):
        lacks.append("the value range of its training data, so the scale of the data given cannot be checked (give "
                     "it scaled as the training data were)")
    if record and val_split is not None and record.get("val_split") is None:
        lacks.append(f"its validation split, so --val-split {val_split} is taken as the run's")
    if lacks:
        warnings.warn(f"{path} was saved by an older gpubp, whose record of the data lacks {'; and '.join(lacks)}",
                      GpubpWarning)


def _named(path, features):
    """The feature names a file must hold: a CSV's columns; an .npz's X is read whole (its shape is
    checked against the model's by ``fit_shape``, which names images as images)."""
    return None if str(path).lower().endswith(".npz") else features


def _model_shape(args, X, saved):
    """The shape of one sample as the model reads it: an MLP an image's C*H*W values, the CNN
    (C, H, W), refused when X holds no images or images channels last (N, H, W, C)."""
    shape = saved.get("shape") or (list(X.shape[1:]) if args.model == "cnn" else [int(np.prod(X.shape[1:]))])
    if args.model != "cnn":
        return shape
    if len(shape) != 3:
        raise InvalidValueError(f"--model cnn needs images: an .npz whose X has shape (N, C, H, W); "
                                f"{args.data} holds {X.shape[1:]} per sample")
    if shape[2] <= 4 < min(shape[:2]):  # (H, W, C) read as (C, H, W)
        raise ShapeError(f"--data {args.data}: X holds {tuple(X.shape[1:])} per sample, images of {shape[2]} "
                         f"pixel(s) wide with {shape[0]} channels; that looks like NHWC (channels last), and "
                         f"--model cnn reads NCHW (N, C, H, W), as PyTorch: save X.transpose(0, 3, 1, 2)")
    return shape


def _plausible_classes(table, path):
    """Refuse a target of non-whole numbers (a measurement: each value would be a class of its
    own), and warn of one with more classes than half its rows (an id, a count, a price?)."""
    fraction = next((c for c in table.classes if isinstance(c, float)), None)
    if fraction is not None:
        raise InvalidValueError(f"--data {path}: the target {table.target!r} holds numbers that are not whole "
                                f"(such as {fraction}), which as classes would each be one of their own; for a "
                                f"real-valued target give --loss mse")
    n, rows = len(table.classes), len(table.y)
    numbers = not any(isinstance(c, str) for c in table.classes)
    if n > rows / 2 or (numbers and n > 10 and rows < 5 * n):  # a price in whole dollars, a count
        few = "most classes have a single sample" if n > rows / 2 else f"a class has {rows / n:.1f} samples on average"
        warnings.warn(f"--data {path}: the target {table.target!r} has {n} distinct values in {rows} rows, so "
                      f"{few}: is it the column to predict (--target), or a real-valued target (--loss mse)?",
                      GpubpWarning)
    spelled: dict = {}
    for c in table.classes:
        spelled.setdefault(str(c).casefold(), []).append(str(c))
    twins = next((names for names in spelled.values() if len(names) > 1), None)
    if twins:  # a spreadsheet's autocorrect ("Yes", "yes"): one class spelled two ways, the model taught to tell them
        warnings.warn(f"--data {path}: the target {table.target!r} holds labels that differ only in case: "
                      f"{' and '.join(map(repr, sorted(twins)))}, each a class of its own; if they are one, spell "
                      f"them alike", GpubpWarning)


def _plausible_features(table, path):
    """Warn of a feature column that numbers the rows (each whole number of a run once: an id, a row
    number), from which a model learns the order of the file (sorted by class?), not the samples."""
    if table.X.ndim != 2 or len(table.X) < 10:  # images have no id column
        return
    values = np.sort(table.X, axis=0)
    counting = (values[0] == np.floor(values[0])) & (np.diff(values, axis=0) == 1).all(axis=0)
    for j in np.flatnonzero(counting):
        warnings.warn(f"--data {path}: the feature {table.features[j]!r} holds each whole number from "
                      f"{values[0, j]:g} to {values[-1, j]:g} once, one per row: a row number or an id, from which "
                      f"a model learns the file's order, not the samples? drop that column", GpubpWarning)


def _split(X, y, fraction, seed, stratify):
    """``(X, y, (X_val, y_val) or None)``: no validation part when the fraction is 0 or rounds to
    no sample; refused when it would leave no sample to train on."""
    if not fraction:
        return X, y, None
    if stratify and np.bincount(y).min() < 2:
        stratify = False  # a class with one sample cannot be in both parts
    X_train, y_train, X_val, y_val = split(X, y, fraction, seed, stratify=stratify)
    if len(X_train) == 0:
        raise InvalidValueError(f"--val-split {fraction} holds out all {len(X)} samples, none is left to train "
                                f"on; use a smaller fraction (or 0)")
    if len(X_val) == 0:
        print(f"note: --val-split {fraction} of {len(X)} samples rounds to none: no validation")
        return X_train, y_train, None
    return X_train, y_train, (X_val, y_val)


def _shaped(data, scaler=None, targets=None) -> Data:
    """Every X scaled (own data) and laid out as the model reads it (images for the CNN); a
    regression's targets standardised by ``targets``."""
    def fix(X, y):
        X = scaler(X) if scaler is not None else X
        return X.reshape(len(X), *data.info["shape"]), targets(y) if targets is not None else y
    data.X, data.y = fix(data.X, data.y)
    data.val = None if data.val is None else fix(*data.val)
    data.test = None if data.test is None else fix(*data.test)
    return data


def saved_record(metadata, path) -> dict:
    """The data record (``extra["data"]``) of the checkpoint ``path`` whose ``metadata`` is given,
    checked before it is used to read a file ({} when there is none: a model not saved by gpubp
    train). A record edited by hand or damaged (a field of the wrong type, an unknown task or loss,
    a scaling of another width than the samples) is one CheckpointError naming the file and the
    field, where it was a traceback, or a silent wrong answer (an unknown task: raw outputs as
    predictions). Fields it does not know are left alone (a later gpubp's)."""
    record = (metadata.get("extra") or {}).get("data")
    if record is None:
        return {}
    try:
        return _fits_model(_checked_record(record), metadata.get("architecture") or [])
    except GpubpError as exc:
        raise CheckpointError(f"{path}: its data record (how gpubp train read the data) is damaged: {exc}; this "
                              f"checkpoint cannot read data as its model was trained") from None


def _checked_record(record) -> dict:
    if not isinstance(record, dict):
        raise InvalidValueError(f"it is a {type(record).__name__}, not a dict")
    for name in ("source", "target"):
        if record.get(name) is not None and not isinstance(record[name], str):
            raise InvalidValueError(f"{name} must be a string or null, got {record[name]!r:.60}")
    if record.get("task") not in (None, "classification", "regression"):
        raise InvalidValueError(f"task must be classification or regression, got {record['task']!r:.60}")
    if record.get("loss") is not None and (not isinstance(record["loss"], str) or record["loss"] not in LOSSES):
        raise InvalidValueError(f"loss must be one of {sorted(LOSSES)}, got {record['loss']!r:.60}")
    for name, kinds in (("features", (str,)), ("classes", (str, int, float))):
        values = record.get(name)
        if values is not None and (not isinstance(values, list) or not values or
                                   not all(isinstance(v, kinds) and not isinstance(v, bool) for v in values)):
            raise InvalidValueError(f"{name} must be a list of {'column names' if name == 'features' else 'labels'} "
                                    f"or null, got {values!r:.60}")
    shape = record.get("shape")
    if shape is not None:
        if not isinstance(shape, list) or len(shape) not in (1, 3):
            raise InvalidValueError(f"shape must be a list of 1 or 3 whole numbers, got {shape!r:.60}")
        shape = [_checks.integer("shape", n, 1) for n in shape]
    if shape and record.get("features") and len(record["features"]) != int(np.prod(shape)):
        raise InvalidValueError(f"features names {len(record['features'])} column(s) {record['features']!r:.60}, but "
                                f"shape {shape} says {int(np.prod(shape))} values per sample")
    if record.get("val_split") is not None:
        _checks.number("val_split", record["val_split"], 0, 1, high_open=True)
    image = record.get("image")
    if image is not None:
        if not isinstance(image, list) or len(image) != 3:
            raise InvalidValueError(f"image must be a list of 3 whole numbers (C, H, W), got {image!r:.60}")
        image = [_checks.integer("image", n, 1) for n in image]
        if shape and int(np.prod(image)) != int(np.prod(shape)):
            raise InvalidValueError(f"image {image} holds {int(np.prod(image))} values, but shape {shape} says "
                                    f"{int(np.prod(shape))}")
    values = record.get("range")
    if values is not None and not (isinstance(values, list) and len(values) == 2 and
                                   all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
                                   and all(np.isfinite(values)) and values[0] <= values[1]):
        raise InvalidValueError(f"range must be [lowest, highest], two finite numbers, got {values!r:.60}")
    for name in ("scaler", "target_scaler"):
        if record.get(name) is not None:
            scaler = Scaler.from_dict(record[name])
            if name == "scaler" and shape and scaler.mean.size != int(np.prod(shape)):
                raise InvalidValueError(f"scaler has {scaler.mean.size} feature(s), but shape {shape} says "
                                        f"{int(np.prod(shape))}")
    return record


def _fits_model(record, architecture) -> dict:
    """``record`` refused unless its sample shape fits the first layer of ``architecture`` (a Dense's
    inputs, a Conv2D's channels) and its classes or target scaling the last layer's outputs."""
    first, last = architecture[0] if architecture else {}, [c for c in architecture if "n_out" in c][-1:]
    shape, width = record.get("shape"), int(np.prod(record.get("shape") or [0]))
    if shape and first.get("type") == "Dense" and width != first.get("n_in"):
        raise InvalidValueError(f"shape {shape} says {width} value(s) per sample, but the model's first layer "
                                f"reads {first.get('n_in')}")
    if shape and first.get("type") == "Conv2D" and (len(shape) != 3 or shape[0] != first.get("in_channels")):
        raise InvalidValueError(f"shape {shape} is not images of the {first.get('in_channels')} channel(s) the "
                                f"model's first layer reads")
    n_out = last[0]["n_out"] if last else None
    named = len(record["classes"]) if record.get("task") == "classification" and record.get("classes") else \
        Scaler.from_dict(record["target_scaler"]).mean.size if record.get("target_scaler") else None
    if None not in (n_out, named) and n_out != named:
        what = f"the classes {record['classes']!r:.80}" if record.get("task") == "classification" else \
            "a target scaling"
        raise InvalidValueError(f"it names {what} for {named} output(s), but the model has {n_out}")
    return record


def in_target_units(outputs, info):
    """A model's outputs in its target's units: a regression trained on a standardised target
    (``target_scaler`` in its data record) gives them scaled."""
    return Scaler.from_dict(info["target_scaler"]).inverse(outputs) if info.get("target_scaler") else outputs


def check_record(model, X, info, path):
    """Refuse a data record that does not describe the model ``path`` holds: one class (or one
    target's scaling) per output. Another model's record, or one written by hand, would label the
    probabilities wrongly (or cut them off), or unscale one output with another's statistics."""
    if not len(X) or not info:
        return
    width = predict(model, X[:1]).reshape(1, -1).shape[1]
    if info.get("task") == "classification" and info.get("classes"):
        named, what = len(info["classes"]), f"the classes {info['classes']!r:.80}"
    elif info.get("target_scaler"):
        named, what = Scaler.from_dict(info["target_scaler"]).mean.size, "a target scaling"
    else:
        return
    if named != width:
        raise InvalidValueError(f"{path}: its data record names {what} for {named} output(s), but the model has "
                                f"{width}; the record is not this model's (written by hand, or beside another?)")


def raw_mse(model, X, y, info, batch_size=1024) -> float:
    """A regression's MSE in its target's units, ``mean((out - y)^2)`` with ``y`` as read from
    the file (``X`` as the model reads it); inf where it passes float64's range (said by the caller)."""
    out = in_target_units(predict(model, X, batch_size=batch_size), info)
    with np.errstate(over="ignore"):
        return float(np.mean((out - np.asarray(y, np.float64).reshape(out.shape)) ** 2))


def read_for_model(path, info, target=None, require_target=False):
    """``(X, y or None, table)`` of a file read as the model's training data was: same
    features, classes and scaling; images reshaped."""
    info = info or {}
    regression = info.get("task") == "regression"
    _csv_target(path, target)
    table = load_table(path, target=target or info.get("target"), regression=regression,
                       features=_named(path, info.get("features")), classes=info.get("classes"),
                       require_target=require_target)
    X = table.X
    if info.get("shape"):
        fit_shape(X, info["shape"], path, "DATA", info.get("image"))
    check_range(X, info, path, "DATA")
    if info.get("scaler"):
        X = Scaler.from_dict(info["scaler"])(X)
    if info.get("shape"):
        X = X.reshape(len(X), *info["shape"])
    return X, table.y, table


def _csv_target(path, target):
    """Refuse ``--target`` with an .npz, whose target is its array y (the flag would be ignored)."""
    if target and str(path).lower().endswith(".npz"):
        raise InvalidValueError(f"--target {target} names a CSV column, but {path} is an .npz whose target is its "
                                f"array y; leave --target out")


def fit_shape(X, shape, path, name, image=None):
    """Refuse ``X`` unless each sample can be read as ``shape``: the same number of values, and
    images (C, H, W) only as the model's own, ``image`` (an MLP's, kept in its record) or ``shape``
    when it is one: not the same pixels in another layout (channels last, height and width swapped)."""
    image = tuple(image or (shape if len(shape) == 3 else ()))
    per_sample, want = int(np.prod(X.shape[1:])), int(np.prod(shape))
    found = tuple(X.shape[1:]) if X.ndim == 4 else None
    if per_sample == want and (not found or not image or found == image):
        return
    if per_sample == want + 1 and not found:
        hint = "; one too many: is the target column among them? drop it"
    elif found and image and found == (*image[1:], image[0]):
        hint = "; that looks like channels last (N, H, W, C): the model reads NCHW, save X.transpose(0, 3, 1, 2)"
    elif X.size == want and len(X) > 1:
        hint = f"; X holds {want} values in all: is it one sample (an image) without its sample axis? save X[None]"
    else:
        hint = ""
    what = f"images of {image}" if image else f"{want} features"
    raise ShapeError(f"{name} {path}: the model reads {what} per sample, the file holds "
                     f"{f'images of {found}' if found else f'{per_sample} values'} per sample{hint}")
