"""The data record a checkpoint keeps (``extra["data"]``: how ``gpubp train`` read its data):
checked before it is used, held to the model it lies beside, and what an older gpubp's lacks
said once."""
from __future__ import annotations

import warnings

import numpy as np

from .. import _checks
from ..datasets import Scaler
from ..datasets.targets import label_key
from ..errors import CheckpointError, GpubpError, GpubpWarning, InvalidValueError
from ..losses import LOSSES
from ..train import predict

BUILT_IN = ["digits", "xor", "spirals"]  # the datasets --dataset names (a record's source, when not a file)


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
        keys = values and [label_key(str(v)) if name == "classes" else v for v in values]
        if keys and len(set(keys)) != len(keys):  # a column read twice, or one label's outputs two
            raise InvalidValueError(f"{name} {values!r:.80} name a {'column' if name == 'features' else 'class'} more "
                                    f"than once")
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
