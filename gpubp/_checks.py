"""Argument checks shared by the core: each names the argument, what it must be and what it got,
and raises InvalidValueError (a ValueError), so a mistake is one clear gpubp error."""
from __future__ import annotations

import inspect
import json
import math
import numbers
import os

import numpy as np

from .errors import InvalidValueError


def integer(name, value, minimum=None) -> int:
    """``value`` as an int: a whole number (not a bool, not 2.7) >= ``minimum``."""
    if minimum is not None and type(minimum) is not int:
        _limit(name, "minimum", minimum)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidValueError(f"{name} must be a whole number{_at_least(minimum)}, got {value!r}")
    if minimum is not None and value < minimum:
        raise InvalidValueError(f"{name} must be a whole number{_at_least(minimum)}, got {value!r}")
    return int(value)


def number(name, value, low=None, high=None, low_open=False, high_open=False) -> float:
    """``value`` as a finite float in [low, high] (either end open with ``low_open``/``high_open``);
    not a bool, not a string."""
    for which, limit in (("low", low), ("high", high)):
        if limit is not None and type(limit) not in (int, float) or limit != limit:  # NaN
            _limit(name, which, limit)
    if type(low_open) is not bool or type(high_open) is not bool:
        low_open, high_open = flag(f"{name}: low_open", low_open), flag(f"{name}: high_open", high_open)
    bound = ""
    if low is not None:
        bound = f" {'>' if low_open else '>='} {low:g}"
    if high is not None:
        bound += f"{' and' if bound else ''} {'<' if high_open else '<='} {high:g}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InvalidValueError(f"{name} must be a finite number{bound}, got {value!r}")
    try:
        x = float(value)
    except OverflowError:  # an int beyond float's range (10**400): its repr may be too long to print
        kind = "an integer" if isinstance(value, numbers.Integral) else f"a {type(value).__name__}"
        raise InvalidValueError(f"{name} must be a finite number{bound}, got {kind} beyond float's range "
                                f"(+-1.8e308)") from None
    if not math.isfinite(x) or (low is not None and (x <= low if low_open else x < low)) \
            or (high is not None and (x >= high if high_open else x > high)):
        raise InvalidValueError(f"{name} must be a finite number{bound}, got {value!r}")
    return x


def flag(name, value, alternative="") -> bool:
    """``value`` as a bool: True or False (NumPy's too), not a string such as "no" that reads as True."""
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidValueError(f"{name} must be True or False{alternative}, got {value!r}")
    return bool(value)


def seed(name, value):
    """A seed: None, a whole number >= 0, or a NumPy Generator (passed through)."""
    if value is None or isinstance(value, np.random.Generator):
        return value
    return integer(name, value, minimum=0)


def generator(name, value) -> np.random.Generator:
    """``value`` when it is a NumPy Generator (what ``np.random.default_rng(seed)`` gives)."""
    if not isinstance(value, np.random.Generator):
        raise InvalidValueError(f"{name} must be a NumPy Generator, such as np.random.default_rng(0), got {value!r:.80}")
    return value


def unmasked(name, value):
    """``value``, refused when it is a NumPy masked array with masked entries: NumPy reads through
    the mask (``np.asarray``, ``tolist`` gives None), so they would be used as the values under it."""
    if np.ma.is_masked(value):
        raise InvalidValueError(f"{name} holds {int(np.ma.count_masked(value))} masked (missing) value(s), which "
                                f"would be read as the values under the mask; fill them (x.filled(v)) or drop them")
    return value


def instance(name, value, kind, hint=""):
    """``value`` when it is a ``kind`` (a gpubp class; a subclass too), e.g. ``instance("fit: model",
    model, Sequential)``: "fit: model must be a gpubp Sequential, got a list" (then ``hint``, if any)."""
    if not (isinstance(kind, type) or isinstance(kind, tuple) and kind and all(isinstance(k, type) for k in kind)):
        raise InvalidValueError(f"{name}: the kind to check against must be a class or a tuple of classes, got {kind!r:.60}")
    if not isinstance(value, kind):
        what = " or ".join(k.__name__ for k in kind) if isinstance(kind, tuple) else kind.__name__
        got = type(value).__name__
        raise InvalidValueError(f"{name} must be a gpubp {what}, got {'an' if got[0] in 'aeiouAEIOU' else 'a'} {got}"
                                + (f"; {hint}" if hint else ""))
    return value


def named(value) -> str:
    """``value`` as an error names what it got where a name was asked for: a string, number or None
    as written, an array by its shape (not its values), anything else by a short repr (and its type
    where the repr does not start with it)."""
    if value is None or isinstance(value, (str, int, float)):
        return f"{value!r:.60}"
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"an array of shape {tuple(value.shape)}" if value.shape else f"a 0-d array of {value.dtype}"
    kind, said = type(value).__name__, f"{value!r:.60}"
    return said if said.startswith(kind) else f"{'an' if kind[0] in 'aeiouAEIOU' else 'a'} {kind} {said}"


def writable_target(name, path, create_parents=False) -> str:
    """The file a write to ``path`` replaces, as an absolute str, refused before any work when it
    could not be written: its folder must exist (or, with ``create_parents``, its nearest existing
    ancestor) and be a writable folder, and it must not be a folder. Through a symbolic link it is
    the file the link names (the link is kept); a link that loops is refused."""
    create_parents = flag(f"{name}: create_parents", create_parents)
    try:
        path = os.path.abspath(os.fsdecode(path))  # str, bytes or os.PathLike
    except TypeError:
        raise InvalidValueError(f"{name} must be a file path, got {path!r}") from None
    if os.path.islink(path):
        try:
            target = os.path.realpath(path, strict=True)
        except FileNotFoundError:  # a link to a file not there yet: that file is written
            target = os.path.realpath(path)
        except OSError as exc:  # a loop
            raise InvalidValueError(f"{name}: {path} is a link that leads to no file ({exc.strerror})") from None
        if os.path.exists(path) and not os.path.lexists(target):  # /dev/stdout sent to a pipe: /proc/N/fd/pipe:[M]
            raise InvalidValueError(f"{name}: {path} leads to {target}, a pipe, a socket or a deleted file (output "
                                    f"sent to another program?), not a file to write; give the path of a file")
        name, path = f"{name} {path} (a link to {target})", target
    if os.path.isdir(path):
        raise InvalidValueError(f"{name}: {path} is a folder; give a file name inside it")
    folder = os.path.dirname(path)
    while create_parents and not os.path.exists(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    if not os.path.exists(folder):
        raise InvalidValueError(f"{name}: the folder {folder} does not exist; create it first")
    if not os.path.isdir(folder):
        raise InvalidValueError(f"{name}: {folder} is a file, not a folder, so {path} cannot be written")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidValueError(f"{name}: the folder {folder} is not writable")
    return path


def broken_link(path) -> str:
    """For a refusal of ``path`` as missing: where it is a link that leads to no file, what it leads to
    (a file that is not there, or a loop of links); else ""."""
    if not os.path.islink(path):
        return ""
    try:
        os.path.realpath(path, strict=True)
    except FileNotFoundError:
        return f" (a link to {os.readlink(path)}, which does not exist)"
    except OSError:
        return " (a link in a loop of links, leading to no file)"
    return ""


def output_path(name, path, ours, kind, overwrite=False, create_parents=False, allow=None) -> str:
    """The one rule of every file gpubp writes: ``writable_target(name, path)``, where a file already
    there is replaced only when it is empty, or a ``kind`` that gpubp wrote (``ours(path)`` is True:
    the same command run again replaces its own output), or when the user says so (``overwrite``).
    Anything else (someone's data, their figure; a read-only file, a pipe, whatever ``overwrite``) is
    refused before any work, in one line naming ``name``, the path, what is there and the way out
    (``allow``; by default ``--overwrite`` for a flag's ``name``, else ``overwrite=True``)."""
    overwrite, path = flag(f"{name}: overwrite", overwrite), writable_target(name, path, create_parents)
    if not os.path.lexists(path):
        return path
    if not os.path.isfile(path) or not os.access(path, os.W_OK) or not os.stat(path).st_mode & 0o222:  # root too
        raise InvalidValueError(f"{name}: {path} is {'read-only' if os.path.isfile(path) else 'not a regular file'}; "
                                f"it is kept: give another path")
    if overwrite or os.path.getsize(path) == 0:
        return path
    try:
        mine = ours(path)
    except (OSError, ValueError):  # unreadable, or not the text it should be
        mine = False
    if not mine:
        allow = allow or ("--overwrite" if str(name).startswith("--") else "overwrite=True")
        raise InvalidValueError(f"{name}: {path} holds {_what(path)}, not {kind} written by gpubp, which this would "
                                f"replace; it is kept: give another path, or pass {allow} to replace it")
    return path


def json_with_keys(path, keys, without=(), exact=False, limit=1 << 26) -> bool:
    """Whether ``path`` holds a JSON object with every one of ``keys`` (exactly those, with ``exact``)
    and none of ``without``: how a JSON file gpubp wrote is told apart (``output_path``'s ``ours``).
    A file over ``limit`` bytes is not one."""
    if os.path.getsize(path) > limit:
        return False
    with open(path) as f:
        data = json.load(f)
    if not isinstance(data, dict):
        return False
    found = set(data)
    return (found == set(keys) if exact else set(keys) <= found) and not found & set(without)


def _what(path) -> str:
    """What a file is, for a message: its kind where its first bytes tell, its size, a text's first line."""
    size = os.path.getsize(path)
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as exc:  # write-only for this user, say: said, not raised in place of the refusal
        return f"a file of {size:,} bytes that cannot be read ({exc.strerror or exc})"
    for magic, kind in ((b"\x89PNG", "a PNG image"), (b"%PDF", "a PDF"), (b"\xff\xd8", "a JPEG image"),
                        (b"PK\x03\x04", "a zip archive (.npz)"), (b"\x93NUMPY", "a NumPy array (.npy)")):
        if head.startswith(magic):
            return f"{kind} of {size:,} bytes"
    try:
        text = head.decode()
    except UnicodeDecodeError as exc:  # binary, unless only a character cut where the 512 bytes end
        cut = len(head) == 512 and exc.reason == "unexpected end of data"
        text = head[:exc.start].decode() if cut else "\x00"
    line = next((line for line in text.splitlines() if line.strip()), "")
    if "\x00" in text or not line:
        return f"a file of {size:,} bytes"
    return f"a text of {size:,} bytes starting {line[:60]!r}"


class Checked:
    """A hyperparameter attribute that is checked whenever it is set, later as at construction:
    ``p = Checked(number, low=0, high=1)`` in a class body checks ``obj.p = v`` as
    ``number("<Class> p", v, low=0, high=1)`` and keeps what the check returns. (No ``__get__``:
    a read finds the value in the instance's ``__dict__``, as fast as a plain attribute.)"""

    def __init__(self, check, **limits):
        self.check, self.limits = check, limits

    def __set_name__(self, owner, name):
        self.name = name

    def __set__(self, obj, value):
        obj.__dict__[self.name] = self.check(f"{type(obj).__name__} {self.name}", value, **self.limits)


class Fixed:
    """An attribute set once, when its object is made, then refused: a layer's configuration
    (its parameters' shapes, its window) that what was built from it would no longer match.
    Reads are those of a plain attribute (no ``__get__``)."""

    def __set_name__(self, owner, name):
        self.name = name

    def __set__(self, obj, value):
        if self.name in obj.__dict__ and obj.__dict__[self.name] is not value:  # ``a += b`` puts a back: allowed
            raise InvalidValueError(f"{type(obj).__name__} {self.name} is fixed when it is made "
                                    f"({repr(obj).splitlines()[0]:.100}); make a new {type(obj).__name__} instead")
        obj.__dict__[self.name] = value


def _limit(name, which, limit):
    """Refuse a bound (``minimum``, ``low``, ``high``) that is not a number: a string or None
    compares with an error, NaN compares False and would let every value pass, a bool reads as 0 or 1."""
    if isinstance(limit, (bool, np.bool_)) or not isinstance(limit, numbers.Real) or math.isnan(limit):
        raise InvalidValueError(f"{name}: the bound {which} must be a number (not NaN, not a bool), got {limit!r:.60}")


def _at_least(minimum):
    return "" if minimum is None else f" >= {minimum}"


def takes_out(method) -> bool:
    """True when ``method`` accepts an ``out`` argument (an output buffer)."""
    try:
        return "out" in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False
