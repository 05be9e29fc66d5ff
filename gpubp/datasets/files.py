"""Your own data: a CSV with a header row (UTF-8, or gzip-compressed), or an ``.npz`` holding ``X`` and ``y``.

A CSV's target column (``target=``, default the last) becomes ``y``; every other column is a
numeric feature. For classification the classes are the target's distinct values, kept as a
list of labels (numbers sorted numerically, anything else as text), and ``y`` holds their
indices; for regression ``y`` is the target as floats, shape (N, 1). Every bad value is named
with its file, line and column.

``Scaler`` standardises features, ``x' = (x - mean) / std`` with the mean and std of the
training split (std 0 -> 1, so a constant column stays finite); ``to_dict`` is what a
checkpoint stores so ``predict`` on raw data is right.
"""
from __future__ import annotations

import csv
import gzip
import io
import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._checks import Fixed, flag, unmasked
from ..checkpoint.atomic import describe
from ..errors import InvalidValueError, NumericalError, ShapeError


FOREIGN = [(b"\x93NUMPY", "a single .npy array"), (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
           (b"GIF8", "a GIF image"), (b"II*\x00", "a TIFF image"), (b"MM\x00*", "a TIFF image")]  # by magic number
FOREIGN_FIX = ("gpubp reads its data from a CSV, or an .npz holding X (images: (N, C, H, W) or (N, H, W)) and y; "
               "load the images or arrays into one X and save them with np.savez(path, X=X, y=y)")


@dataclass
class Table:
    """Features ``X`` (float64, (N, F) or images (N, C, H, W); an .npz's (N, H, W) as (N, 1, H, W)), targets
    ``y`` (int64 class indices, or float64 (N, k); None when the file has no target), and what they mean."""

    X: np.ndarray
    y: np.ndarray | None
    features: list
    target: str | None
    classes: list | None


def load_table(path, target=None, regression=False, features=None, classes=None,
               require_target=True) -> Table:
    """Read ``path`` (``.csv`` or ``.npz``) as a :class:`Table`.

    Args:
        target: the CSV column to predict (default: the last column).
        regression: float targets instead of classes.
        features: the feature columns a trained model expects (by name, any order in the
            file); default every column but the target.
        classes: the labels a trained model knows; a target value outside them is refused.
        require_target: False to read the features only (prediction): the target column,
            present or not, is left out of ``X`` and not read (``y`` is None), so labels a
            new file leaves empty or holds outside ``classes`` do not stop it.
    """
    try:
        path = Path(path)
    except TypeError:
        raise InvalidValueError(f"data file must be a path, got {path!r}") from None
    regression, require_target = flag("regression", regression), flag("require_target", require_target)
    if target is not None and not isinstance(target, str):
        raise InvalidValueError(f"target must be a column name, got {target!r:.80}")
    features = None if features is None else _names("features", features, "column names", str)
    if features is not None and len(set(features)) != len(features):
        raise InvalidValueError(f"features {features} name a column more than once")
    if features == []:
        raise InvalidValueError("features [] name no column; a model reads at least one")
    if classes is not None:
        classes = _names("classes", classes, "labels")
        if len(classes) < 2:
            raise InvalidValueError(f"classes {classes} name {len(classes)} class(es); classification needs two or more")
        keys = [_key(str(c)) for c in classes]
        if len(set(keys)) != len(keys):
            raise InvalidValueError(f"classes {classes} name a class more than once")
    if path.is_dir():
        raise InvalidValueError(f"data file {path} is a folder; gpubp reads one file: a CSV, or an .npz of arrays "
                                f"(images: load them into one array X (N, C, H, W) and save X and y with "
                                f"np.savez(path, X=X, y=y))")
    if path.exists() and not path.is_file():  # reading a pipe with no writer would wait forever
        raise InvalidValueError(f"data file {path} is a pipe or a device, not a file (process substitution, "
                                f"/dev/stdin?); write it to a file and give that")
    if not path.is_file():
        raise InvalidValueError(f"data file {path} does not exist")
    if path.suffix.lower() == ".npz":
        X, raw, names, target = _read_npz(path, features, require_target)
    else:
        X, raw, names, target = _read_csv(path, target, features, require_target)
    if raw is None:
        return Table(X, None, names, None, classes)
    if regression:
        y = _floats(raw, path, target)
        return Table(X, y.reshape(len(y), -1), names, target, None)
    labels, y = _encode(raw, classes, path, target)
    return Table(X, y, names, target, labels)


def _names(name, value, what, kind=object) -> list:
    """``value`` as a list (a string would be read as one name per character)."""
    try:
        names = None if isinstance(value, (str, bytes)) else list(value)
    except TypeError:
        names = None
    if names is None or not all(isinstance(v, kind) for v in names):
        raise InvalidValueError(f"{name} must be a list of {what}, got {value!r:.80}")
    return names


def _brief(names, ends=4) -> str:
    """``names`` as a list, its middle left out when long (a header of 784 pixels would fill the screen)."""
    if len(names) <= 3 * ends:
        return repr(list(names))
    shown = ", ".join(map(repr, [*names[:ends], "...", *names[-ends:]])).replace("'...'", "...")
    return f"[{shown}] ({len(names)} columns)"


def _where(path, line) -> str:
    """Where a target value is: a CSV's line, an .npz's index into y."""
    return f"y[{line}]" if path.suffix.lower() == ".npz" else f"line {line}"


def _read_csv(path, target, features, require_target):
    rows = _csv_rows(path)
    if len(rows) < 2:
        raise InvalidValueError(f"{path}: expected a header row and at least one data row, "
                                f"found {len(rows)} non-empty row(s)")
    header = [h.strip() for h in rows[0][1]]
    _check_header(path, header)
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise ShapeError(f"{path}, line {line}: {len(row)} values but the header has {len(header)} columns")
    target = _target_column(path, header, None if target is None else target.strip(), features, require_target)
    names = list(features) if features is not None else [h for h in header if h != target]
    if target in names:  # the answer among the inputs: a model that learns nothing else
        raise InvalidValueError(f"{path}: the target column {target!r} is also one of the features {_brief(names)}")
    if not names:
        raise InvalidValueError(f"{path}: no feature column: the header {_brief(header)} holds only the target "
                                f"{target!r}")
    missing = [n for n in names if n not in header]
    if missing:
        npz = (": the model was trained on an .npz, whose X values these name in order; give it an .npz with X"
               if names == [f"x{i}" for i in range(len(names))] else "")
        raise InvalidValueError(f"{path}: the model needs the column(s) {_brief(missing)}, not in the header "
                                f"{_brief(header)}{npz}")
    cols = [header.index(n) for n in names]
    X = np.empty((len(rows) - 1, len(cols)))
    for i, (line, row) in enumerate(rows[1:]):
        for j, c in enumerate(cols):
            X[i, j] = _number(row[c], path, line, header[c])
    raw = None if target is None or not require_target else [(line, row[header.index(target)].strip())
                                                             for line, row in rows[1:]]
    return X, raw, names, target


def _csv_rows(path) -> list:
    """``[(line, values)]`` of the rows holding a value, ``line`` the one each begins on in the
    file (blank rows are skipped, a quoted value may span lines); a quote never closed is refused,
    not read as the rest of the file."""
    reader = csv.reader(io.StringIO(_text(path), newline=""), strict=True)
    rows, line = [], 1
    try:
        for row in reader:
            if "".join(row).strip():
                rows.append((line, row))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise InvalidValueError(f"{path}, line {line}: not a CSV row ({exc}): a quote \" never closed, or text "
                                f"after a closing one?") from None
    return rows


def _text(path) -> str:
    """The file's text: UTF-8 (a BOM allowed) or UTF-16 with its BOM, gzip-compressed or not."""
    try:
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":  # gzip's magic number (a .csv.gz)
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise InvalidValueError(f"cannot read {path} ({describe(exc)})") from None
    foreign = next((what for magic, what in FOREIGN if data.startswith(magic)), None)
    if foreign:
        raise InvalidValueError(f"{path} is {foreign}, not a CSV or an .npz: {FOREIGN_FIX}")
    if data[:4] == b"PK\x03\x04":
        raise InvalidValueError(f"{path} is a zip archive (an Excel workbook? an .npz under another name?), not a "
                                f"CSV: save it as CSV in UTF-8, or give an .npz its .npz name")
    encoding = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[:exc.start].decode(encoding, "replace").count("\n") + 1
        raise InvalidValueError(f"{path}, line {line}: byte {data[exc.start]:#04x} is not {exc.encoding} text "
                                f"(a file from another program or in another encoding?); save it as CSV in UTF-8") from None
    if "\x00" in text:  # csv reads NUL as a character: a binary file would become labels
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise InvalidValueError(f"{path}, line {line}: holds a NUL character, so it is not a text CSV (a binary "
                                f"file?); save it as CSV in UTF-8")
    return text


def _check_header(path, header):
    """Every column named, each name once (a repeated name would be read twice as one column), and
    not every name a number: that is a first sample where the header row is missing."""
    separator = next((c for c in ";\t|" if c in header[0]), None) if len(header) == 1 else None
    if separator:
        raise InvalidValueError(f"{path}: the header is the one column {header[0]!r:.60}, its values separated by "
                                f"{separator!r}; gpubp reads comma-separated values: save the file with commas")
    if all(_is_number(h) for h in header):
        first = ",".join(header[:3]) + (",..." if len(header) > 3 else "")
        raise InvalidValueError(f"{path}: the first row ({first}) holds only numbers, so it is a sample, not a "
                                f"header; the CSV needs a header row naming its columns (add one, e.g. x0,x1,...,label)")
    blank = [i + 1 for i, h in enumerate(header) if not h]
    if blank:
        index = " (a pandas index column: save with to_csv(..., index=False))" if blank == [1] else ""
        raise InvalidValueError(f"{path}: column(s) {blank} of the header have no name{index}; every column "
                                f"needs one")
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise InvalidValueError(f"{path}: the header names the column(s) {repeated} more than once; "
                                f"every column needs a name of its own")


def _target_column(path, header, target, features, require_target):
    if target is None:
        if features is not None:  # a trained model: the target is whatever column is not a feature
            rest = [h for h in header if h not in features]
            target = rest[0] if len(rest) == 1 else None
        elif require_target:
            target = header[-1]
    if target is not None and target not in header:
        if require_target:
            raise InvalidValueError(f"{path}: no column {target!r} to predict; the header has {_brief(header)}")
        target = None
    if require_target and target is None:
        raise InvalidValueError(f"{path}: no target column (give --target COLUMN); the header has {_brief(header)}")
    return target


def _number(text, path, line, column) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidValueError(f"{path}, {_where(path, line)}, column {column!r}: {text.strip()!r} is not "
                                f"a number") from None
    if not math.isfinite(value):
        raise InvalidValueError(f"{path}, {_where(path, line)}, column {column!r}: {text.strip()!r} is not finite")
    return value


def _read_npz(path, features, require_target):
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):  # one .npy array under an .npz name
            raise ValueError(f"it holds a single {type(archive).__name__}, not named arrays")
        with archive:
            arrays = {k: archive[k] for k in archive.files}
        damaged = sorted(k for k, a in arrays.items() if not isinstance(a, np.ndarray))  # raw bytes: no .npy
        if damaged:
            raise ValueError(f"{damaged} not stored as .npy arrays")
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:  # damaged files
        raise InvalidValueError(f"cannot read {path} as .npz ({type(exc).__name__}: {exc})") from None
    if "__meta__" in arrays and "X" not in arrays:  # the listing of every parameter and slot says nothing
        raise InvalidValueError(f"{path} is a gpubp checkpoint (a trained model), not data: give an .npz of X and y, "
                                f"or a CSV")
    if "X" not in arrays or (require_target and "y" not in arrays):
        raise InvalidValueError(f"{path}: an .npz needs arrays named X and y, found {sorted(arrays)}")
    X = arrays["X"]
    if X.dtype.kind not in "biuf" or X.ndim not in (2, 3, 4):
        raise ShapeError(f"{path}: X must be numbers of shape (samples, features), (samples, C, H, W) or "
                         f"(samples, H, W), got {X.dtype} {X.shape}")
    if X.ndim == 3:  # images without a channel axis (as MNIST loaders give them): one channel each
        X = X[:, None]
    if X.size == 0:
        raise ShapeError(f"{path}: X holds no samples or no features (shape {X.shape})")
    X = X.astype(np.float64)
    bad = np.argwhere(~np.isfinite(X))
    if len(bad):
        raise InvalidValueError(f"{path}: X holds NaN/Inf, the first at index {tuple(int(i) for i in bad[0])}")
    names = [f"x{i}" for i in range(int(np.prod(X.shape[1:])))]
    if features is not None and len(features) != len(names):
        raise ShapeError(f"{path}: X has {len(names)} features per sample, the model expects {len(features)}")
    y = arrays.get("y") if require_target else None
    if y is not None and (y.ndim not in (1, 2) or y.dtype.kind not in "biufU"):
        raise ShapeError(f"{path}: y must hold one label or row of targets per sample, got {y.dtype} {y.shape}")
    if y is not None and len(y) != len(X):
        raise ShapeError(f"{path}: X has {len(X)} samples but y has {len(y)}")
    raw = None if y is None else ([(i, str(v)) for i, v in enumerate(y.tolist())] if y.ndim == 1 else y)
    return X, raw, list(features or names), "y" if y is not None else None


def _floats(raw, path, target) -> np.ndarray:
    if isinstance(raw, np.ndarray):
        if raw.dtype.kind not in "iuf":
            raise InvalidValueError(f"{path}: regression targets y must be numbers, got {raw.dtype}")
        bad = np.argwhere(~np.isfinite(raw))
        if len(bad):
            raise InvalidValueError(f"{path}: y holds NaN/Inf, the first at index {tuple(int(i) for i in bad[0])}")
        return raw.astype(np.float64)
    return np.array([_number(text, path, line, target) for line, text in raw])


def _encode(raw, classes, path, target):
    """(labels, indices): ``classes`` when given, else the distinct values, sorted."""
    if isinstance(raw, np.ndarray) and raw.shape[1] == 1:  # a column of labels (y[:, None]): one per sample
        raw = [(i, str(v)) for i, v in enumerate(raw[:, 0].tolist())]
    if isinstance(raw, np.ndarray):
        one_hot = raw.dtype.kind in "biuf" and raw.shape[1] > 1 and bool(((raw == 0) | (raw == 1)).all()) \
            and bool((raw.sum(axis=1) == 1).all())
        hint = ("; it looks one-hot: save its class indices, y.argmax(axis=1)" if one_hot else
                " (use --loss mse for several real-valued targets)")
        raise ShapeError(f"{path}: classification needs y with one label per sample, got shape {raw.shape}{hint}")
    empty = next((line for line, text in raw if not text.strip()), None)
    if empty is not None:
        raise InvalidValueError(f"{path}, {_where(path, empty)}, column {target!r}: the label is empty; every sample "
                                f"needs one (remove the row or fill it in)")
    missing = next(((line, text) for line, text in raw if _is_nonfinite(text)), None)
    if missing is not None:  # "nan" is a missing value, not a class of its own
        raise InvalidValueError(f"{path}, {_where(path, missing[0])}, column {target!r}: the label "
                                f"{missing[1].strip()!r} is not finite; every sample needs a real label (remove the "
                                f"row or fill it in)")
    if classes is None:
        classes = _sorted_labels({text for _, text in raw})
    if len(classes) < 2:
        raise InvalidValueError(f"{path}: column {target!r} has only one distinct value {classes}; "
                                f"classification needs two or more (--loss mse for regression)")
    index = {_key(str(c)): i for i, c in enumerate(classes)}
    y = np.empty(len(raw), dtype=np.int64)
    for k, (line, text) in enumerate(raw):
        if _key(text) not in index:
            raise InvalidValueError(f"{path}, {_where(path, line)}, column {target!r}: {text!r} is not one of the "
                                    f"model's classes {classes}")
        y[k] = index[_key(text)]
    return classes, y


def _sorted_labels(values) -> list:
    """Numbers sorted as numbers (kept as int where whole), else text sorted as text."""
    try:
        numbers = sorted({_label_number(v) for v in values})
    except ValueError:
        return sorted({_key(v) for v in values})  # "1" and "1.0" beside text labels are one class
    return numbers


def _label_number(text):
    """A numeric label: an int when whole (exactly, however large), else a float; ValueError if text."""
    try:
        return int(text)
    except ValueError:
        v = float(text)
    return int(v) if v.is_integer() else v


def _key(text) -> str:
    """The label of a target cell as ``_sorted_labels`` spells it ("1.0" and "1" are class 1)."""
    try:
        return str(_label_number(text))
    except ValueError:
        return text


def _is_number(text) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_nonfinite(text) -> bool:
    try:
        return not math.isfinite(float(text))
    except (ValueError, OverflowError):
        return False


class Scaler:
    """Per-feature standardisation fitted on training data: ``x' = (x - mean) / std``. Its mean
    and std are fixed when it is made (a new Scaler for others)."""

    mean, std = Fixed(), Fixed()

    def __init__(self, mean, std):
        self.mean, self.std = _floats_of("Scaler: mean", mean).ravel(), _floats_of("Scaler: std", std).ravel()
        if self.mean.shape != self.std.shape or not self.mean.size:
            raise ShapeError(f"Scaler: {self.mean.size} means but {self.std.size} stds; one of each per feature")
        if not (np.isfinite(self.mean).all() and np.isfinite(self.std).all() and (self.std > 0).all()):
            raise InvalidValueError("Scaler: mean and std must be finite and std > 0 (NaN, Inf or a zero std "
                                    "would turn every input into NaN or Inf)")

    def __repr__(self):
        return f"Scaler({self.mean.size} features)"

    @classmethod
    def fit(cls, X) -> "Scaler":
        X = _floats_of("Scaler.fit: X", X)
        if X.ndim == 0:
            raise ShapeError(f"Scaler.fit: X needs one row per sample, got a single value {X!r:.60}")
        if len(X) == 0:
            raise ShapeError("Scaler.fit: no samples to take the mean and std of")
        X = X.reshape(len(X), -1)
        if not np.isfinite(X).all():
            raise InvalidValueError("Scaler.fit: the features hold NaN/Inf")
        # each column divided by a power of two near its largest |x| (exact): the mean and the squares
        # neither overflow (values up to 1.8e308) nor underflow (subnormal columns); the same numbers otherwise
        unit = np.ldexp(1.0, np.frexp(np.abs(X).max(axis=0))[1] - 1)
        Z = X / unit
        mean, std = Z.mean(axis=0) * unit, Z.std(axis=0) * unit
        # a column of one value: its mean is that value exactly (summing n copies of 0.1 rounds), its std 1,
        # not the rounding's ~1e-17, which would blow a new value 0.2 up to 7e15
        constant = (X == X[0]).all(axis=0)
        return cls(np.where(constant, X[0], mean), np.where(constant | (std == 0), 1.0, std))

    def __call__(self, X) -> np.ndarray:
        X = self._checked("Scaler: X", X)
        X2 = X.reshape(len(X), self.mean.size)
        with np.errstate(all="ignore"):  # x - mean may overflow where the result does not: then in halves
            out = self._halves((X2 - self.mean) / self.std, lambda: (X2 / 2 - self.mean / 2) / self.std)
        return self._finite(out.reshape(X.shape), X, "scaled")

    def inverse(self, X) -> np.ndarray:
        """Back to the original units: ``x = x' std + mean`` (a regression's outputs)."""
        X = self._checked("Scaler.inverse: X", X)
        X2 = X.reshape(len(X), self.mean.size)
        with np.errstate(all="ignore"):
            out = self._halves(X2 * self.std + self.mean, lambda: X2 * (self.std / 2) + self.mean / 2)
        return self._finite(out.reshape(X.shape), X, "unscaled")

    @staticmethod
    def _halves(out, half) -> np.ndarray:
        """``out``, its NaN/Inf entries recomputed as twice ``half()`` (the same formula on halved terms,
        exact), which is finite where only an intermediate sum overflowed float64."""
        bad = ~np.isfinite(out)
        if bad.any():
            out[bad] = (half() * 2)[bad]
        return out

    @staticmethod
    def _finite(out, X, what) -> np.ndarray:
        """``out``, refused when finite values of ``X`` became NaN/Inf (beyond float64's range)."""
        bad = ~np.isfinite(out) & np.isfinite(X)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise NumericalError(f"Scaler: X{list(first)} = {X[first]:.6g} {what} is beyond float64's range "
                                 f"({int(bad.sum())} value(s)); the data is far outside what the Scaler was fitted on")
        return out

    def _checked(self, name, X) -> np.ndarray:
        """``X`` as float64, refused unless each sample holds the fitted number of features."""
        X = _floats_of(name, X)
        if X.ndim < 1 or X.size != len(X) * self.mean.size:
            raise ShapeError(f"Scaler: fitted on {self.mean.size} features per sample, got data of shape {X.shape}")
        return X

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d) -> "Scaler":
        if not isinstance(d, dict) or set(d) != {"mean", "std"}:
            raise InvalidValueError(f"a Scaler is stored as {{'mean': [...], 'std': [...]}}, got {d!r:.80}")
        return cls(d["mean"], d["std"])


def _floats_of(name, values) -> np.ndarray:
    """``values`` as a C-ordered float64 array (a Fortran-ordered or strided array reduced as its C-ordered
    copy is, to the last bit); masked values, None, complex and non-numbers refused."""
    unmasked(name, values)
    try:
        given = np.asarray(values)
        missing = given.dtype == object and given.ndim > 0 and any(v is None for v in given.reshape(-1))  # NumPy: NaN
        floats = None if missing or np.iscomplexobj(given) else np.asarray(given, np.float64, order="C")
    except (TypeError, ValueError):
        raise InvalidValueError(f"{name} must be numbers (an array or lists of them), got {values!r:.60}") from None
    if missing:
        raise InvalidValueError(f"{name} holds None where numbers belong (a missing value?): {values!r:.60}")
    if floats is None:  # NumPy would drop the imaginary parts with only a warning
        raise InvalidValueError(f"{name} must be real numbers, got complex values {values!r:.60}")
    return floats
