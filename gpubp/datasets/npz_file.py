"""Reading an ``.npz`` holding ``X`` (features (N, F), images (N, C, H, W) or (N, H, W)) and its target
array (``y``, or the one named); a damaged file, a gpubp checkpoint or arrays of the wrong kind are refused."""
from __future__ import annotations

import zipfile
import zlib

import numpy as np

from ..errors import InvalidValueError, ShapeError
from .csv_file import FOREIGN, FOREIGN_FIX, brief, spelled
from .targets import labels_of


def read_npz(path, target, features, require_target):
    """``(X, raw, names, target, precision)``: X as float64 (``precision``: its float type in the file),
    ``raw`` the target array's labels as ``[(index, text)]`` (a 2-d one as the array itself; None when absent
    or not required), ``names`` x0, x1, ... (``features``, when given, must be these) and the target: the
    array named ``target`` (default "y"), refused when the file holds none of that name (or names X)."""
    name = "y" if target is None else target
    try:
        _is_npz(path)
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):  # one .npy array under an .npz name
            raise ValueError(f"it holds a single {type(archive).__name__}, not named arrays")
        with archive:
            arrays = {k: _array(archive, k, path, ("X", name)) for k in archive.files}
        arrays = {k: a for k, a in arrays.items() if a is not None}  # pickles beside X and y: not read
        damaged = sorted(k for k, a in arrays.items() if not isinstance(a, np.ndarray))  # raw bytes: no .npy
        if damaged:
            raise ValueError(f"{damaged} not stored as .npy arrays")
    except InvalidValueError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:  # damaged files
        raise InvalidValueError(f"cannot read {path} as .npz ({type(exc).__name__}: {exc})") from None
    if "__meta__" in arrays and "X" not in arrays:  # the listing of every parameter and slot says nothing
        raise InvalidValueError(f"{path} is a gpubp checkpoint (a trained model), not data: give an .npz of X and y, "
                                f"or a CSV")
    if name == "X":
        raise InvalidValueError(f"{path}: target 'X' names the features' array; name the array to predict, "
                                f"one of {sorted(k for k in arrays if k != 'X')}")
    if target is not None and require_target and name not in arrays:  # was: y read whatever was asked
        raise InvalidValueError(f"{path}: no array {name!r} to predict; the .npz holds {sorted(arrays)}"
                                f"{spelled([name], list(arrays))}")
    if "X" not in arrays or (require_target and name not in arrays):
        raise InvalidValueError(f"{path}: an .npz needs arrays named X and {name}, found {sorted(arrays)}")
    X = arrays["X"]
    if X.dtype.kind not in "biuf" or X.ndim not in (2, 3, 4):
        raise ShapeError(f"{path}: X must be numbers of shape (samples, features), (samples, C, H, W) or "
                         f"(samples, H, W), got {X.dtype} {X.shape}")
    if X.ndim == 3:  # images without a channel axis (as MNIST loaders give them): one channel each
        X = X[:, None]
    if X.size == 0:
        raise ShapeError(f"{path}: X holds no samples or no features (shape {X.shape})")
    precision = X.dtype.type if X.dtype.kind == "f" and X.dtype.itemsize < 8 else np.float64
    X = X.astype(np.float64)
    bad = np.argwhere(~np.isfinite(X))
    if len(bad):
        raise InvalidValueError(f"{path}: X holds NaN/Inf, the first at index {tuple(int(i) for i in bad[0])}")
    names = [f"x{i}" for i in range(int(np.prod(X.shape[1:])))]
    if features is not None and len(features) != len(names):
        raise ShapeError(f"{path}: X has {len(names)} features per sample, the model expects {len(features)}")
    if features is not None and list(features) != names:  # was: taken as the names of X's columns, unread
        raise InvalidValueError(f"{path}: features {brief(list(features))} are not X's columns, which an .npz names "
                                f"by position, {brief(names)}; give those, in that order, or features=None")
    y = arrays.get(name) if require_target else None
    if y is not None and (y.ndim not in (1, 2) or y.dtype.kind not in "biufU"):
        raise ShapeError(f"{path}: {name} must hold one label or row of targets per sample, got {y.dtype} {y.shape}")
    if y is not None and y.ndim == 2 and not y.shape[1]:  # was: "Scaler: 0 means but 0 stds", naming no file
        raise ShapeError(f"{path}: {name} holds no target per sample (shape {y.shape}); give one label, or a row "
                         f"of one or more targets, per sample")
    if y is not None and len(y) != len(X):
        raise ShapeError(f"{path}: X has {len(X)} samples but {name} has {len(y)}")
    raw = None if y is None else (list(enumerate(labels_of(y))) if y.ndim == 1 else y)
    return X, raw, names, name if y is not None else None, precision


def _is_npz(path):
    """Refuse a file that is neither a zip (an .npz) nor one .npy array, saying what it is: NumPy reads
    anything else as a pickle, and its refusal spoke of loading "pickled (object) data" unsafely."""
    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith((b"PK", b"\x93NUMPY")):
        return
    foreign = next((what for magic, what in FOREIGN if head.startswith(magic)), None)
    if not head:
        what = "empty (0 bytes)"
    elif foreign:
        raise InvalidValueError(f"{path} is {foreign}, not an .npz: {FOREIGN_FIX}")
    elif head.startswith(b"\x1f\x8b"):
        what = "gzip-compressed (an .npz.gz? decompress it with gunzip and give the .npz)"
    elif head.startswith(b"\x80"):
        what = "a Python pickle, which gpubp does not load (it can run code)"
    elif b"\x00" not in head and _text(head):
        what = "text (a CSV under an .npz name? give it its .csv name)"
    else:
        what = f"not a zip archive, beginning with the bytes {head[:8]!r}"
    raise InvalidValueError(f"{path} is {what}, so not an .npz of arrays X and y (np.savez(path, X=X, y=y) writes one)")


def _text(head) -> bool:
    """Whether the bytes ``head`` read as UTF-8 (a character cut where they end allowed)."""
    try:
        head.decode()
    except UnicodeDecodeError as exc:
        return exc.reason == "unexpected end of data" and len(head) == 512
    return True


def _array(archive, key, path, read):
    """The array ``key`` of the open ``archive``; one of Python objects (a pickle, as pandas' ``.values`` of
    text gives), which ``allow_pickle=False`` leaves unread, refused as one of the arrays ``read`` (X and the
    target), naming how to save it, and skipped (None) as another (column names kept beside the data)."""
    try:
        return archive[key]
    except ValueError as exc:
        if "allow_pickle" not in str(exc):
            raise
    if key not in read:
        return None
    how = "numbers (X.astype(np.float64))" if key == "X" else "numbers or text (y.astype(str))"
    raise InvalidValueError(f"{path}: the array {key!r} holds Python objects (dtype object, stored as a pickle, which "
                            f"gpubp does not load: it can run code); save {key} as {how}")
