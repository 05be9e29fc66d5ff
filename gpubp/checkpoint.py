"""Checkpoints: architecture, parameters, optimizer state and provenance in one .npz.

Written atomically (an open temp file in the same folder, fsync, then
``os.replace``), so a crash leaves either the old checkpoint or the new one,
never half of one. Loaded with ``allow_pickle=False``; metadata is a JSON string.
A checkpoint loads on any backend: train on a GPU, load on the CPU.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field

import numpy as np

from ._compat import cupy
from ._version import __version__
from .errors import CheckpointError, GpubpError, ShapeError
from .network import Sequential
from .optim import optimizer_from_state

FORMAT = "gpubp-checkpoint-1"


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


def save(path, model, optimizer=None, extra=None) -> str:
    """Write ``model`` (and ``optimizer`` state, and JSON-able ``extra``) to ``path`` atomically."""
    path = os.fspath(path)
    meta = {"format": FORMAT, "architecture": model.config(), **provenance(model), "extra": extra or {}}
    arrays = {f"param/{k}": model.backend.to_numpy(v) for k, v in model.parameters().items()}
    if optimizer is not None:
        state = optimizer.state_dict()
        meta["optimizer"] = {k: state[k] for k in ("type", "hyper", "t")}
        arrays.update({f"opt/{n}/{s}": a for n, st in state["state"].items() for s, a in st.items()})
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".gpubp-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, __meta__=np.array(json.dumps(meta)), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def read_metadata(path) -> dict:
    """The metadata of a checkpoint, without building the model."""
    with _open(path) as data:
        return _meta(data, path)


def load(path, backend=None, dtype=None) -> Checkpoint:
    """Rebuild model (and optimizer) from ``path`` on ``backend`` (default: the saved dtype, "auto").
    The parameters are read straight into the new model: nothing is drawn at random."""
    with _open(path) as data:
        with _damage_named(path):
            meta = _meta(data, path)
            model = Sequential.from_config(meta["architecture"], backend, dtype or meta["dtype"], seed=None)
            return _restore(data, path, meta, model)


def load_into(path, model) -> Checkpoint:
    """Read the parameters saved at ``path`` into ``model`` in place (its architecture must
    match) and rebuild the saved optimizer on the model's backend, e.g. to resume training."""
    with _open(path) as data:
        with _damage_named(path):
            meta = _meta(data, path)
            if meta["architecture"] != model.config():
                raise CheckpointError(f"{path} holds a different architecture: {meta['architecture']}, "
                                      f"the model is {model.config()}")
            return _restore(data, path, meta, model)


def _restore(data, path, meta, model) -> Checkpoint:
    """Parameters (shapes checked before any is written) and optimizer of the open checkpoint."""
    try:
        model.load_parameters({name: _array(data, f"param/{name}", path) for name in model.parameter_shapes()})
    except ShapeError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    optimizer = None
    if "optimizer" in meta:
        state: dict = {}
        for key in data.files:
            if key.startswith("opt/"):
                _, name, slot = key.split("/")
                state.setdefault(name, {})[slot] = data[key]
        optimizer = optimizer_from_state({**meta["optimizer"], "state": state}, model.backend)
    return Checkpoint(model, optimizer, meta)


@contextlib.contextmanager
def _damage_named(path):
    """Errors of a damaged or incompatible file as one CheckpointError naming it."""
    try:
        yield
    except (ValueError, KeyError, TypeError, OSError, zipfile.BadZipFile) as exc:
        if isinstance(exc, GpubpError):  # already names what is wrong
            raise
        raise CheckpointError(f"{path} is damaged or incompatible with this gpubp "
                              f"({type(exc).__name__}: {exc})") from None


def _open(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{path} is not a readable .npz checkpoint ({exc})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):  # a bare .npy array
        raise CheckpointError(f"{path} holds a single array, not a gpubp checkpoint (.npz)")
    return data


def _meta(data, path) -> dict:
    if "__meta__" not in data.files:
        raise CheckpointError(f"{path} is an .npz file but not a gpubp checkpoint (no metadata)")
    try:
        meta = json.loads(str(data["__meta__"]))
    except (ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{path}: unreadable metadata ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise CheckpointError(f"{path}: unsupported checkpoint format {found!r}, expected {FORMAT}")
    return meta


def _array(data, key, path):
    if key not in data.files:
        raise CheckpointError(f"{path}: missing array {key!r}; the file is truncated or from "
                              f"another model")
    return data[key]
