"""The data of ``gpubp train``: a built-in set or your own file, split, standardised with the
training split's statistics, and described in ``info`` (kept in the checkpoint's extras as
``data``: data_record.py) so a saved model reads raw files the same way (model_data.py, for
``predict`` and ``evaluate``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..datasets import Scaler, load_dataset, load_table, split
from ..errors import InvalidValueError, ShapeError
from .data_checks import check_range, csv_target, file_target, fit_shape, in_cli_words, named_features, value_range
from .data_record import BUILT_IN, check_record, saved_record, unrecorded  # noqa: F401  (their old import path)
from .model_data import in_target_units, raw_mse, read_for_model  # noqa: F401  (their old import path)
from .plausible_data import plausible_classes, plausible_features

CNN_SHAPE = [1, 8, 8]  # the built-in digits as images


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
    csv_target(args.data, args.target)
    with in_cli_words():
        table = load_table(args.data, target=file_target(args.data, args.target or saved.get("target")),
                           regression=regression, features=named_features(args.data, saved.get("features")),
                           classes=saved.get("classes"))
    shape = _model_shape(args, table.X, saved)
    image = saved.get("image") if saved else (list(table.X.shape[1:]) if table.X.ndim == 4 else None)
    fit_shape(table.X, shape, args.data, "--data", image)
    check_range(table.X, saved, args.data, "--data")  # a resumed run's data at the scale it was trained on
    if not saved:
        plausible_features(table, args.data)
    if table.classes and not saved.get("classes"):
        plausible_classes(table, args.data)
    X, y, val = _split(table.X, table.y, args.val_split, args.seed, stratify=not regression)
    # a resumed run reads the data as its model learnt it: with the saved scaling, or none (built-in data, fit's)
    # fitted on X in the file's float type: a float32 file's rounding steps are no spread to scale up
    scaler = Scaler.from_dict(saved["scaler"]) if saved.get("scaler") else None if saved else \
        Scaler.fit(X.astype(table.precision, copy=False))
    targets = _target_scaler(y, regression, saved)
    values = saved.get("range") or value_range(table.X)  # an older record's lack: the data this run trains on
    info = {"source": str(args.data), "target": table.target, "features": table.features,
            "task": "regression" if regression else "classification", "classes": table.classes,
            "loss": args.loss, "scaler": scaler and scaler.to_dict(), "shape": shape, "val_split": args.val_split,
            **({"target_scaler": targets.to_dict()} if targets else {}), **({"image": image} if image else {}),
            **({"range": values} if values else {})}
    test = None
    if args.test:
        with in_cli_words():  # a CSV's target column is no array of an .npz (was: passed on, and refused)
            t = load_table(args.test, target=file_target(args.test, table.target), regression=regression,
                           features=named_features(args.test, table.features), classes=table.classes)
        fit_shape(t.X, shape, args.test, "--test", image)
        check_range(t.X, info, args.test, "--test")
        test = (t.X, t.y)
    data = Data(X, y, val, test, info, str(args.data))
    return _shaped(data, scaler, targets)


def target_line(info, given) -> str:
    """What a run on own data learns: its target column (said to be the default, the last column, unless
    ``given``), and its classes or that it is a regression."""
    npz = str(info.get("source", "")).lower().endswith(".npz")  # its target is its array y
    how = "" if given or npz else " (the last column; --target COLUMN names another)"
    classes = info.get("classes")
    if not classes:
        return f"target: {info['target']!r}{how}, real-valued (regression)"
    shown = ", ".join(map(str, classes[:6])) + (", ..." if len(classes) > 6 else "")
    return f"target: {info['target']!r}{how}, {len(classes)} classes: {shown}"


def _target_scaler(y, regression, saved):
    """A regression learns its target standardised too (a price in the hundreds from outputs near 0
    takes an MLP many epochs); its outputs are turned back into the target's units when read. A
    resumed run keeps the saved scaling, and one saved without it (None) goes on without."""
    if not regression:
        return None
    if saved.get("target_scaler"):
        return Scaler.from_dict(saved["target_scaler"])
    return None if saved else Scaler.fit(y)


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
