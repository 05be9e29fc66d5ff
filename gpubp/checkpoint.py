"""Checkpoints: architecture, parameters, optimizer state and provenance in one .npz.

Written atomically (a temp file in the same folder, fsync, ``os.replace``, fsync of the
folder), so a crash leaves either the old checkpoint or the new one, never half of one;
the temp files of saves that were killed are removed by the next save in that folder. An
existing file keeps its permissions. Non-finite parameters or slots are never written.

Loading reads the zip directory and every array's header first and checks them against
what the architecture and the optimizer imply (each array present, with its shape and
dtype, nothing else) before any array is read, so a damaged or crafted file is refused
before anything is allocated; then the values must be finite. Arrays are read with
``allow_pickle=False``; metadata is a JSON string. A checkpoint loads on any backend.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import re
import socket
import stat
import struct
import time
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np

from . import _checks
from ._compat import cupy
from ._version import __version__
from .backend import get_backend
from .errors import CheckpointError, GpubpError, InvalidValueError, NumericalError, ShapeError
from .network import Sequential
from .optim import optimizer_from_state

FORMAT = "gpubp-checkpoint-1"
_HOST = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:40] or "host"
_TEMP = re.compile(r"^\.gpubp-(?P<host>[A-Za-z0-9._]+)-(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")
_LEGACY_TEMP = re.compile(r"^\.gpubp-[a-z0-9_]{8}\.tmp$")  # tempfile.mkstemp names of gpubp <= 0.x
# what reading a damaged zip can raise (a flipped byte: bad CRC, unknown compression, "encrypted")
_DAMAGE = (OSError, ValueError, KeyError, TypeError, EOFError, NotImplementedError, RuntimeError,
           zipfile.BadZipFile, zlib.error, struct.error, UnicodeDecodeError)


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

    Refused before anything is written: a folder that does not exist or is not writable,
    ``extra`` JSON cannot hold, and NaN/Inf in a parameter or slot (the file at ``path``,
    if any, is kept)."""
    path = _checks.writable_target("checkpoint path", path)
    meta = {"format": FORMAT, "architecture": model.config(), **provenance(model), "extra": extra or {}}
    arrays = {f"param/{k}": model.backend.to_numpy(v) for k, v in model.parameters().items()}
    arrays.update({f"buffer/{k}": model.backend.to_numpy(v) for k, v in model.buffers().items()})
    if optimizer is not None:
        state = optimizer.state_dict()
        meta["optimizer"] = {k: state[k] for k in ("type", "hyper", "t")}
        arrays.update({f"opt/{n}/{s}": a for n, st in state["state"].items() for s, a in st.items()})
    text = _json(meta)
    bad = [k for k, a in arrays.items() if not np.isfinite(a).all()]
    if bad:
        raise NumericalError(f"refusing to write {path}: {', '.join(bad)} hold(s) NaN/Inf "
                             f"(the file already there, if any, is kept)")
    _write_atomically(path, lambda f: np.savez(f, __meta__=np.array(text), **arrays))
    return path


def _json(meta) -> str:
    """``meta`` as JSON; NumPy scalars and small arrays become numbers and lists."""
    def plain(x):
        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, np.ndarray) and x.size <= 10_000:
            return x.tolist()
        raise InvalidValueError(f"checkpoint extra: a {type(x).__name__} cannot be stored as JSON; "
                                f"pass numbers, strings, lists and dicts")
    try:
        return json.dumps(meta, default=plain)
    except GpubpError:
        raise
    except (TypeError, ValueError) as exc:  # e.g. non-string keys, circular references
        raise InvalidValueError(f"checkpoint extra cannot be stored as JSON ({exc})") from None


def _write_atomically(path, write):
    folder = os.path.dirname(path)
    _remove_orphans(folder)
    tmp = os.path.join(folder, f".gpubp-{_HOST}-{os.getpid()}-{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)  # umask applies
    try:
        with os.fdopen(fd, "wb") as f:
            with contextlib.suppress(FileNotFoundError):
                if hasattr(os, "fchmod"):  # an existing checkpoint keeps its permissions
                    os.fchmod(f.fileno(), stat.S_IMODE(os.stat(path).st_mode))
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder):
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_orphans(folder, legacy_age=3600.0):
    """Delete temp files left in ``folder`` by saves that were killed: ours from this host whose
    process is gone, and unnamed ones (older gpubp) untouched for ``legacy_age`` seconds."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            m = _TEMP.match(entry.name)
            if m and m["host"] == _HOST and not _alive(int(m["pid"])) or \
                    _LEGACY_TEMP.match(entry.name) and time.time() - entry.stat().st_mtime > legacy_age:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _alive(pid) -> bool:
    if pid == os.getpid() or os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process
        return True
    return True


# -- loading --------------------------------------------------------------------------------
def read_metadata(path) -> dict:
    """The metadata of a checkpoint, without building the model."""
    with _Archive(path) as archive:
        return _meta(archive)


def load(path, backend=None, dtype=None) -> Checkpoint:
    """Rebuild model (and optimizer) from ``path`` on ``backend`` (default: the saved dtype, "auto").
    Every array is checked against the architecture before any is read: nothing is drawn at random."""
    with _Archive(path) as archive:
        meta = _meta(archive)
        backend = get_backend(backend, dtype or meta["dtype"])
        try:
            model = Sequential.from_config(meta["architecture"], backend, seed=None)
        except (GpubpError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise CheckpointError(f"{archive.path}: the architecture cannot be built: {exc}") from None
        return _restore(archive, meta, model)


def load_into(path, model) -> Checkpoint:
    """Read the parameters saved at ``path`` into ``model`` in place (its architecture must
    match) and rebuild the saved optimizer on the model's backend, e.g. to resume training."""
    with _Archive(path) as archive:
        meta = _meta(archive)
        if meta["architecture"] != model.config():
            raise CheckpointError(f"{archive.path} holds a different architecture: {meta['architecture']}, "
                                  f"the model is {model.config()}")
        return _restore(archive, meta, model)


def _restore(archive, meta, model) -> Checkpoint:
    """Parameters and optimizer of the open checkpoint: the inventory first, then the values."""
    shapes = model.parameter_shapes()
    required = {f"param/{k}": s for k, s in shapes.items()}
    buffers = {f"buffer/{k}": v for k, v in model.buffers().items()}
    required.update({k: tuple(v.shape) for k, v in buffers.items()})
    optional = {}
    if "optimizer" in meta:
        slots, t = _saved_slots(meta, model, archive.path)
        slot_shapes = {f"opt/{k}/{slot}": s for k, s in shapes.items() for slot in slots}
        (required if t > 0 else optional).update(slot_shapes)  # slots exist from the first step on
    dtypes = {k: (v.dtype if v.dtype.kind in "iub" else meta["dtype"]) for k, v in buffers.items()}
    archive.check_inventory(required, optional, meta["dtype"], dtypes)
    arrays = {key: archive.read(key) for key in [*required, *(k for k in optional if k in archive.headers)]}
    bad = {k: int(a.size - np.count_nonzero(np.isfinite(a))) for k, a in arrays.items()}
    bad = {k: n for k, n in bad.items() if n}
    if bad:
        raise CheckpointError(f"{archive.path}: NaN/Inf in " + ", ".join(f"{k} ({n} values)" for k, n in bad.items())
                              + "; this checkpoint cannot be used")
    try:
        model.load_parameters({k: arrays[f"param/{k}"] for k in shapes})
        model.load_buffers({k[len("buffer/"):]: arrays[k] for k in buffers})
    except ShapeError as exc:
        raise CheckpointError(f"{archive.path}: {exc}") from None
    optimizer = None
    if "optimizer" in meta:
        state: dict = {}
        for key, a in arrays.items():
            if key.startswith("opt/"):
                _, name, slot = key.split("/")
                state.setdefault(name, {})[slot] = a
        try:
            optimizer = optimizer_from_state({**meta["optimizer"], "state": state}, model.backend)
        except (ValueError, TypeError, KeyError) as exc:
            if isinstance(exc, GpubpError) and not isinstance(exc, InvalidValueError):
                raise
            raise CheckpointError(f"{archive.path}: the saved optimizer cannot be rebuilt ({exc})") from None
    return Checkpoint(model, optimizer, meta)


def _saved_slots(meta, model, path):
    """(slot names, step count) of the saved optimizer, from its metadata alone."""
    opt = meta["optimizer"]
    try:
        t = _checks.integer("t", opt["t"], 0)
        probe = optimizer_from_state({**opt, "state": {}}, model.backend)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CheckpointError(f"{path}: the saved optimizer is unreadable ({exc})") from None
    return tuple(probe.slots), t


def _meta(archive) -> dict:
    path = archive.path
    if "__meta__" not in archive.headers:
        raise CheckpointError(f"{path} is an .npz file but not a gpubp checkpoint (no metadata)")
    shape, dtype = archive.headers["__meta__"]
    if shape != () or dtype.kind != "U":
        raise CheckpointError(f"{path}: the metadata entry is not a JSON string (dtype {dtype}, shape {shape})")
    try:
        meta = json.loads(str(archive.read("__meta__")))
    except ValueError as exc:
        raise CheckpointError(f"{path}: unreadable metadata ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise CheckpointError(f"{path}: unsupported checkpoint format {found!r}, expected {FORMAT}")
    if not isinstance(meta.get("architecture"), list) or not all(isinstance(c, dict) for c in meta["architecture"]):
        raise CheckpointError(f"{path}: the metadata holds no architecture (a list of layer configs)")
    if meta.get("dtype") not in ("float32", "float64"):
        raise CheckpointError(f"{path}: the metadata says dtype {meta.get('dtype')!r}, expected float32 or float64")
    if "optimizer" in meta and not isinstance(meta["optimizer"], dict):
        raise CheckpointError(f"{path}: the optimizer metadata is not a dict")
    return meta


class _Archive:
    """An open .npz: the zip directory and each array's header (shape, dtype) read up front,
    each header checked against the entry's size; ``read`` reads one array."""

    def __init__(self, path):
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise CheckpointError(f"no checkpoint at {self.path}")
        if os.path.isdir(self.path):
            raise CheckpointError(f"{self.path} is a folder, not a checkpoint file")
        with open(self.path, "rb") as f:
            head = f.read(6)
        if not head:
            raise CheckpointError(f"{self.path} is empty (0 bytes), not a checkpoint; was its save interrupted?")
        if head == b"\x93NUMPY":
            raise CheckpointError(f"{self.path} holds a single array, not a gpubp checkpoint (.npz)")
        try:
            self.zip = zipfile.ZipFile(self.path)
        except _DAMAGE as exc:
            raise CheckpointError(f"{self.path} is not a readable .npz checkpoint ({type(exc).__name__}: "
                                  f"{exc}); it is damaged, truncated or another kind of file") from None
        try:
            self.headers = self._headers()
        except BaseException:
            self.zip.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.zip.close()

    def _headers(self) -> dict:
        size, headers = os.path.getsize(self.path), {}
        for info in self.zip.infolist():
            if not info.filename.endswith(".npy"):
                raise CheckpointError(f"{self.path}: unexpected entry {info.filename!r}; a checkpoint holds "
                                      f".npy arrays only")
            key = info.filename[:-4]
            if info.compress_size > size or info.header_offset + info.compress_size > size:
                raise CheckpointError(f"{self.path}: entry {key!r} claims more bytes than the file holds "
                                      f"(truncated or damaged)")
            with self._damage(key), self.zip.open(info) as f:
                version = np.lib.format.read_magic(f)
                reader = {(1, 0): np.lib.format.read_array_header_1_0,
                          (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                if reader is None:
                    raise CheckpointError(f"{self.path}: entry {key!r} uses .npy format {version}, "
                                          f"which gpubp checkpoints never do")
                shape, _, dtype = reader(f)
                data_at = f.tell()
            if dtype.hasobject or dtype.kind not in "fiU":
                raise CheckpointError(f"{self.path}: entry {key!r} holds {dtype} values; a gpubp checkpoint "
                                      f"holds only float and integer arrays and its metadata string")
            if data_at + math.prod(shape) * dtype.itemsize != info.file_size:
                raise CheckpointError(f"{self.path}: entry {key!r} declares shape {shape} ({dtype}) but holds "
                                      f"{info.file_size - data_at} bytes of data (truncated or damaged)")
            headers[key] = (tuple(shape), dtype)
        return headers

    def check_inventory(self, required, optional, dtype, dtypes=None):
        """Every ``required`` array present, each present array expected, shapes and dtype as said
        (``dtypes`` names the arrays of another dtype, e.g. a Dropout's integer step)."""
        missing = [k for k in required if k not in self.headers]
        if missing:
            raise CheckpointError(f"{self.path}: missing array(s) {', '.join(map(repr, missing))}; the file is "
                                  f"damaged, truncated or from another model")
        unexpected = [k for k in self.headers if k != "__meta__" and k not in required and k not in optional]
        if unexpected:
            raise CheckpointError(f"{self.path}: unexpected array(s) {', '.join(map(repr, unexpected))} for this "
                                  f"architecture and optimizer")
        for key, shape in {**required, **optional}.items():
            if key in self.headers:
                found, kind = self.headers[key]
                if found != tuple(shape):
                    raise CheckpointError(f"{self.path}: {key} has shape {found}, the architecture says "
                                          f"{tuple(shape)}")
                expected = np.dtype((dtypes or {}).get(key, dtype))
                if kind != expected:
                    raise CheckpointError(f"{self.path}: {key} holds {kind} values, the checkpoint says {expected}")

    def read(self, key) -> np.ndarray:
        with self._damage(key), self.zip.open(key + ".npy") as f:
            return np.lib.format.read_array(f, allow_pickle=False)

    @contextlib.contextmanager
    def _damage(self, key):
        """Whatever a damaged entry raises, as one CheckpointError naming the file and entry."""
        try:
            yield
        except GpubpError:
            raise
        except _DAMAGE as exc:
            raise CheckpointError(f"{self.path}: entry {key!r} is damaged ({type(exc).__name__}: "
                                  f"{exc})") from None
