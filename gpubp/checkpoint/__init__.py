"""Checkpoints: architecture, parameters, optimizer state and provenance in one .npz.

Written atomically (a temp file in the same folder, fsync, ``os.replace``, fsync of the
folder), so a crash leaves either the old checkpoint or the new one, never half of one;
the temp files of saves that were killed are removed by the next save in that folder (and,
with the lock file such a save left, by the next read of its checkpoint). An
existing file keeps its permissions; a symbolic link is followed (the file it names is
replaced, the link kept). Non-finite parameters or slots are never written.

Loading reads the zip directory and every array's header first and checks them against
what the architecture and the optimizer imply (each array present, with its shape and
dtype, nothing else) before any array is read, so a damaged or crafted file is refused
before anything is allocated; then the values must be finite. Arrays are read with
``allow_pickle=False``; metadata is a JSON string. A checkpoint loads on any backend.
"""
from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass, field

import numpy as np

from .. import _checks
from .._compat import cupy
from .._version import __version__
from ..backend import Backend, default_device, get_backend, parse_spec
from ..errors import CheckpointError, GpubpError, InvalidValueError, NumericalError
from ..network import Sequential
from ..optim import Optimizer, optimizer_from_state
from ..optim.state import checked_state
from .archive import FORMAT, Archive, inventory_problem, read_meta, user_path, written_by
from .atomic import write_atomically

KEPT = "the file already there, if any, is kept"  # how save's refusals after the path's checks end


@dataclass
class Checkpoint:
    model: Sequential
    optimizer: object = None
    metadata: dict = field(default_factory=dict)


def provenance(model) -> dict:
    """Where and with what a model was saved: backend, device, dtype, library versions, time."""
    return {"backend": model.backend.name, "device": model.backend.device,
            "dtype": model.backend.dtype.name, "gpubp": __version__, "numpy": np.__version__,
            "cupy": getattr(cupy, "__version__", None),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


# -- saving ---------------------------------------------------------------------------------
def save(path, model, optimizer=None, extra=None) -> str:
    """Write ``model`` (and ``optimizer`` state, and JSON-able ``extra``) to ``path`` atomically.

    Refused before anything is written (the file at ``path``, if any, is kept): a path ``target``
    refuses, ``extra`` JSON cannot hold, NaN/Inf in a parameter or slot, an optimizer whose state
    ``load`` would refuse with this model (another model's, of another dtype, incomplete)."""
    given, path = target(path)
    _checks.instance("checkpoint.save: model", model, Sequential)
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise InvalidValueError(f"checkpoint.save: optimizer must be a gpubp Optimizer (or None), "
                                f"got a {type(optimizer).__name__}")
    if extra is not None and not isinstance(extra, dict):  # readers look names up in it
        raise InvalidValueError(f"checkpoint extra must be a dict of JSON-able values, got a {type(extra).__name__}")
    meta = {"format": FORMAT, "architecture": model.config(), **provenance(model), "extra": extra or {}}
    arrays = {f"param/{k}": model.backend.to_numpy(v) for k, v in model.parameters().items()}
    arrays.update({f"buffer/{k}": model.backend.to_numpy(v) for k, v in model.buffers().items()})
    if optimizer is not None:
        state = optimizer.state_dict()
        meta["optimizer"] = {k: state[k] for k in ("type", "hyper", "t")}
        arrays.update({f"opt/{n}/{s}": a for n, st in state["state"].items() for s, a in st.items()})
    text = metadata_json(meta)
    bad = [k for k, a in arrays.items() if not np.isfinite(a).all()]
    if bad:
        raise NumericalError(f"refusing to write {path}: {', '.join(bad)} hold(s) NaN/Inf ({KEPT})")
    problem = None if optimizer is None else _unloadable(model, optimizer, state, arrays, meta["dtype"])
    if problem:
        raise InvalidValueError(f"refusing to write {path}: the {type(optimizer).__name__} optimizer's state does "
                                f"not fit the model ({problem}); pass the optimizer that trains this model ({KEPT})")
    try:
        write_atomically(path, lambda f: np.savez(f, __meta__=np.array(text), **arrays))
    except OSError as exc:  # a full disk, a read-only or special file system: nothing replaced
        raise CheckpointError(f"cannot write {path} ({type(exc).__name__}: {exc.strerror or exc}); {KEPT}") from None
    return given


def _unloadable(model, optimizer, state, arrays, dtype) -> str | None:
    """Why ``load`` would refuse a checkpoint of ``model`` with ``optimizer``'s ``state`` and
    these ``arrays`` (slots of another model or dtype, missing ones), or None."""
    try:
        t = checked_state(state, type(optimizer))["t"]
        return inventory_problem({k: (a.shape, a.dtype) for k, a in arrays.items()},
                                 *_expected(model, optimizer.slots, t), dtype)
    except GpubpError as exc:
        return str(exc)


def target(path) -> tuple:
    """(``path`` as given, made absolute; the file a save to it replaces), refused before any work
    when that file cannot or must not be replaced: a folder that does not exist or is not writable,
    a folder, a pipe or device, a read-only file (no write permission bit: kept from root too, as
    every output gpubp writes), a file that is not a gpubp checkpoint, unless empty (someone's
    data, a damaged checkpoint: moved away by the user, never replaced). ``~`` is expanded; through
    a symbolic link the file it names is replaced, the link kept."""
    given = file_name("checkpoint path", user_path(path))
    path = _checks.writable_target("checkpoint path", given)  # through a link: the file it names
    given = os.path.abspath(given)
    if not os.path.exists(path):
        return given, path
    if not os.path.isfile(path):
        raise InvalidValueError(f"checkpoint path: {path} is not a regular file (a pipe, a device); "
                                f"give the name of a file")
    if not os.access(path, os.W_OK) or not os.stat(path).st_mode & 0o222:  # no write bit: kept from root too
        raise InvalidValueError(f"checkpoint path: {path} is read-only; it is kept (make it writable to replace it)")
    if os.path.getsize(path) == 0:  # nothing to keep (touch, a temp file's name): replaced, as by every output
        return given, path
    try:
        read_metadata(path)
    except CheckpointError as exc:
        raise InvalidValueError(f"checkpoint path: {path} is there and is not a gpubp checkpoint, so it is not "
                                f"replaced; move it away or give another name ({exc})") from None
    return given, path


def file_name(name, path):
    """``path`` (a str; anything else as given, for the caller to refuse), refused when it ends in a
    separator: ``runs/`` names a folder, where a file named runs was written."""
    if isinstance(path, str) and path.endswith(tuple(filter(None, (os.sep, os.altsep)))):
        raise InvalidValueError(f"{name}: {path} ends in a separator, so it names a folder; name a file inside it")
    return path


def same_file(a, b) -> bool:
    """Whether paths ``a`` and ``b`` name one file (through links too)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # not there yet (or unreadable): compare the names
        return os.path.abspath(a) == os.path.abspath(b)


def metadata_json(meta) -> str:
    """``meta`` as JSON, by the rules every checkpoint is written with (``fit`` applies them to
    ``checkpoint_extra`` before training); NumPy scalars and small arrays become numbers and lists."""
    def plain(x):
        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, np.ndarray) and x.size <= 10_000:
            return _checks.unmasked("checkpoint extra", x).tolist()  # tolist: a masked value would be None
        raise InvalidValueError(f"checkpoint extra: a {type(x).__name__} cannot be stored as JSON; "
                                f"pass numbers, strings, lists and dicts")
    try:
        text = json.dumps(meta, default=plain)
    except GpubpError:
        raise
    except (TypeError, ValueError) as exc:  # e.g. tuple keys, circular references
        raise InvalidValueError(f"checkpoint extra cannot be stored as JSON ({exc})") from None
    _string_keys(meta)
    return text


def _string_keys(x):
    """Refuse a key JSON would turn into a string: {0: "cat"} would come back as {"0": "cat"}."""
    items = x.items() if isinstance(x, dict) else enumerate(x) if isinstance(x, (list, tuple)) else ()
    for key, value in items:
        if isinstance(x, dict) and not isinstance(key, str):
            raise InvalidValueError(f"checkpoint extra: the key {key!r} ({type(key).__name__}) would be read back "
                                    f"as a string; use string keys")
        _string_keys(value)










# -- loading --------------------------------------------------------------------------------
def read_metadata(path) -> dict:
    """The metadata of a checkpoint, without building the model."""
    with Archive(path) as archive:
        return read_meta(archive)


def load(path, backend=None, dtype=None) -> Checkpoint:
    """Rebuild model (and optimizer) from ``path`` on ``backend`` (a spec or a Backend; default
    the default device: a ``use_backend`` block, else ``$GPUBP_DEVICE``, else "auto"), in
    ``dtype``, else the dtype a spec names ("cpu/float64"), else the saved dtype (a Backend gives
    only the device). Every array is checked against the architecture before any
    is read: nothing is drawn at random."""
    with Archive(path) as archive:
        meta = read_meta(archive)
        named = not isinstance(backend, Backend) and parse_spec(default_device(check=True) if backend is None else backend)[1]
        backend = get_backend(backend, dtype if dtype is not None else (None if named else meta["dtype"]))
        try:
            model = Sequential.from_config(meta["architecture"], backend, seed=None)
        except (GpubpError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise CheckpointError(f"{archive.path}: the architecture cannot be built: {exc}{written_by(meta)}") from None
        return _restore(archive, meta, model)


def load_into(path, model) -> Checkpoint:
    """Read the parameters saved at ``path`` into ``model`` in place (its architecture must
    match) and rebuild the saved optimizer on the model's backend, e.g. to resume training."""
    _checks.instance("checkpoint.load_into: model", model, Sequential)
    with Archive(path) as archive:
        meta = read_meta(archive)
        if meta["architecture"] != model.config():
            raise CheckpointError(f"{archive.path} holds a different architecture: {meta['architecture']}, "
                                  f"the model is {model.config()}")
        return _restore(archive, meta, model)


def _expected(model, slots, t):
    """(required, optional, dtypes) of a checkpoint of ``model`` and an optimizer keeping ``slots``
    after ``t`` steps: {array name: shape} of those it must and may hold (slots exist from the
    first step on), and the dtype of those not of the model's dtype."""
    shapes, buffers = model.parameter_shapes(), model.buffers()
    required = {f"param/{k}": s for k, s in shapes.items()}
    required.update({f"buffer/{k}": tuple(v.shape) for k, v in buffers.items()})
    slot_shapes = {f"opt/{k}/{slot}": s for k, s in shapes.items() for slot in slots}
    optional = {} if t else slot_shapes
    required.update(slot_shapes if t else {})
    return required, optional, {f"buffer/{k}": v.dtype for k, v in buffers.items() if v.dtype.kind in "iub"}


def _restore(archive, meta, model) -> Checkpoint:
    """Parameters and optimizer of the open checkpoint: the inventory first, then the values."""
    slots, t = _saved_slots(meta, model, archive.path) if "optimizer" in meta else ((), 0)
    problem = inventory_problem(archive.headers, *_expected(model, slots, t), meta["dtype"])
    if problem:
        raise CheckpointError(f"{archive.path}: {problem}; the file is damaged, truncated or from another model"
                              f"{written_by(meta)}")
    arrays = {key: archive.read(key) for key in archive.headers if key != "__meta__"}
    shapes, buffers = model.parameter_shapes(), model.buffers()
    bad = {k: int(a.size - np.count_nonzero(np.isfinite(a))) for k, a in arrays.items()}
    bad = {k: n for k, n in bad.items() if n}
    if bad:
        raise CheckpointError(f"{archive.path}: NaN/Inf in " + ", ".join(f"{k} ({n} values)" for k, n in bad.items())
                              + "; this checkpoint cannot be used")
    optimizer = None
    if "optimizer" in meta:  # rebuilt before the model is touched
        state: dict = {}
        for key, a in arrays.items():
            if key.startswith("opt/"):
                _, name, slot = key.split("/")
                state.setdefault(name, {})[slot] = a
        try:
            optimizer = optimizer_from_state({**meta["optimizer"], "state": state}, model.backend)
        except NumericalError as exc:  # a float64 slot beyond a float32 model's range, as a parameter's is refused
            raise CheckpointError(f"{archive.path}: the saved optimizer's slots: {exc}; this checkpoint cannot be "
                                  f"used in {model.backend.dtype} (the model is unchanged)") from None
        except (ValueError, TypeError, KeyError) as exc:
            if isinstance(exc, GpubpError) and not isinstance(exc, InvalidValueError):
                raise
            raise CheckpointError(f"{archive.path}: the saved optimizer cannot be rebuilt ({exc}){written_by(meta)}") \
                from None
    before = {k: v.copy() for k, v in buffers.items()}
    try:  # the buffers first: a layer may still refuse their values (a negative variance, step)
        model.load_buffers({k: arrays[f"buffer/{k}"] for k in buffers})
        model.load_parameters({k: arrays[f"param/{k}"] for k in shapes})
    except GpubpError as exc:
        model.load_buffers(before)  # all or nothing
        raise CheckpointError(f"{archive.path}: {exc}; this checkpoint cannot be used (the model is "
                              f"unchanged)") from None
    return Checkpoint(model, optimizer, meta)


def _saved_slots(meta, model, path):
    """(slot names, step count) of the saved optimizer, from its metadata alone."""
    opt = meta["optimizer"]
    try:
        t = _checks.integer("t", opt["t"], 0)
        probe = optimizer_from_state({**opt, "state": {}}, model.backend)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CheckpointError(f"{path}: the saved optimizer is unreadable ({exc}){written_by(meta)}") from None
    return tuple(probe.slots), t




