"""Reading a checkpoint without trusting it: the zip directory and every array's header are
read first and checked against what the architecture implies, before any data is read or
allocated; whatever a damaged file raises becomes one CheckpointError naming file and entry."""
from __future__ import annotations

import contextlib
import json
import math
import os
import re
import struct
import zipfile
import zlib

import numpy as np

from .._checks import broken_link
from .._version import __version__
from ..errors import CheckpointError, GpubpError
from .atomic import clear_stale

FORMAT = "gpubp-checkpoint-1"
# what reading a damaged zip can raise (a flipped byte: bad CRC, unknown compression, "encrypted")
DAMAGE = (OSError, ValueError, KeyError, TypeError, EOFError, NotImplementedError, RuntimeError,
           zipfile.BadZipFile, zlib.error, struct.error, UnicodeDecodeError)


def user_path(path):
    """``path`` (str, bytes or os.PathLike) as a str, ``~`` expanded; anything else as given,
    for the caller to refuse with its own words."""
    if isinstance(path, (str, bytes, os.PathLike)):
        return os.path.expanduser(os.fsdecode(path))
    return path


def read_meta(archive) -> dict:
    """The metadata of an open checkpoint ``archive``, checked: a JSON dict of this format with an
    architecture (a list of layer configs), a dtype float32 or float64, and dicts for ``optimizer``
    and ``extra`` when present; anything else is a CheckpointError naming the file."""
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
        raise CheckpointError(f"{path}: unsupported checkpoint format {found!r}, expected {FORMAT}{written_by(meta)}")
    if not isinstance(meta.get("architecture"), list) or not all(isinstance(c, dict) for c in meta["architecture"]):
        raise CheckpointError(f"{path}: the metadata holds no architecture (a list of layer configs)"
                              f"{written_by(meta)}")
    if meta.get("dtype") not in ("float32", "float64"):
        raise CheckpointError(f"{path}: the metadata says dtype {meta.get('dtype')!r}, expected float32 or float64"
                              f"{written_by(meta)}")
    for key in ("optimizer", "extra"):
        if key in meta and not isinstance(meta[key], dict):
            raise CheckpointError(f"{path}: the {key} metadata is not a dict")
    return meta


def written_by(meta) -> str:
    """For a refusal of a checkpoint another gpubp wrote: which one, and that a newer one's may hold what
    this one cannot read (else a file of a later version reads as damaged); "" for this version's."""
    version = meta.get("gpubp") if isinstance(meta, dict) else None
    if not isinstance(version, str) or version == __version__:
        return ""
    if _release(version) > _release(__version__):
        return f" (written by gpubp {version:.40}, newer than this gpubp {__version__}: read it with that version)"
    return f" (written by gpubp {version:.40}; this is gpubp {__version__})"


def _release(version) -> tuple:
    """The release numbers of a version string: "1.10.0rc1" -> (1, 10, 0)."""
    return tuple(int(n) for n in re.findall(r"\d+", re.split(r"[^\d.]", version, maxsplit=1)[0]))


def inventory_problem(headers, required, optional, dtypes, dtype) -> str | None:
    """What is wrong with ``headers`` ({name: (shape, dtype)}), or None: every ``required`` array
    present, each present array expected, shapes as said, all of ``dtype`` but those ``dtypes``
    names (e.g. a Dropout's integer step)."""
    missing = [k for k in required if k not in headers]
    if missing:
        return f"missing array(s) {', '.join(map(repr, missing))}"
    unexpected = [k for k in headers if k != "__meta__" and k not in required and k not in optional]
    if unexpected:
        return f"unexpected array(s) {', '.join(map(repr, unexpected))} for this architecture and optimizer"
    for key, shape in {**required, **optional}.items():
        if key in headers:
            found, kind = headers[key]
            if tuple(found) != tuple(shape):
                return f"{key} has shape {tuple(found)}, the architecture says {tuple(shape)}"
            expected = np.dtype(dtypes.get(key, dtype))
            if kind != expected:
                return f"{key} holds {kind} values, the checkpoint says {expected}"
    return None


def _is_text(path) -> bool:
    """Whether the first bytes of ``path`` read as UTF-8 text without NUL (a character cut where they end allowed)."""
    with open(path, "rb") as f:
        head = f.read(512)
    try:
        head.decode()
    except UnicodeDecodeError as exc:
        if exc.reason != "unexpected end of data" or len(head) < 512:
            return False
    return b"\x00" not in head


class Archive:
    """An open .npz: the zip directory and each array's header (shape, dtype) read up front,
    each header checked against the entry's size; ``read`` reads one array."""

    def __init__(self, path):
        self.path = user_path(path)
        if not isinstance(self.path, str):
            raise CheckpointError(f"a checkpoint path must be a file path, got {path!r}")
        clear_stale(self.path)  # a lock file a killed writer left beside it, before it is named missing
        if not os.path.exists(self.path):
            raise CheckpointError(f"no checkpoint at {self.path}{broken_link(self.path)}")
        if os.path.isdir(self.path):
            raise CheckpointError(f"{self.path} is a folder, not a checkpoint file")
        if not os.path.isfile(self.path):  # reading a pipe would wait for a writer forever
            raise CheckpointError(f"{self.path} is not a regular file (a pipe, a device), not a checkpoint file")
        try:
            with open(self.path, "rb") as f:
                head = f.read(6)
        except OSError as exc:
            raise CheckpointError(f"cannot read {self.path} ({type(exc).__name__}: {exc.strerror or exc})") from None
        if not head:
            raise CheckpointError(f"{self.path} is empty (0 bytes), not a checkpoint; was its save interrupted?")
        if head == b"\x93NUMPY":
            raise CheckpointError(f"{self.path} holds a single array, not a gpubp checkpoint (.npz)")
        if not head.startswith(b"PK") and _is_text(self.path):
            raise CheckpointError(f"{self.path} holds text (a CSV?), not a gpubp checkpoint (.npz)")
        try:
            self.zip = zipfile.ZipFile(self.path)
        except DAMAGE as exc:
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
        except DAMAGE as exc:
            raise CheckpointError(f"{self.path}: entry {key!r} is damaged ({type(exc).__name__}: "
                                  f"{exc})") from None
