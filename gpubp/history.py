"""Training history (per-epoch records) and the per-epoch log file."""
from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import numbers
import os
import warnings
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from . import _checks
from .checkpoint import file_name
from .checkpoint.atomic import describe, write_atomically
from .errors import GpubpError, GpubpWarning, InvalidValueError

PER_EPOCH = ("loss", "metric", "val_loss", "val_metric", "lr", "epoch_time", "samples_per_sec")


@dataclass
class History:
    """Per-epoch records of a fit() run (lists indexed by epoch)."""

    loss: list = field(default_factory=list)
    metric: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_metric: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    epoch_time: list = field(default_factory=list)
    samples_per_sec: list = field(default_factory=list)
    metric_name: str | None = None
    stopped: str | None = None       # why training ended before `epochs`, if it did
    best_epoch: int | None = None    # 1-based epoch whose state fit(restore_best=True) put back
    interrupted: bool = False        # True when Ctrl-C ended the run
    data: str | None = None          # what fit trained on ("N samples, <hash>"), so a resume on other data is told

    def __post_init__(self):
        """Refuse fields of the wrong kind when made (every per-epoch field a list of real numbers,
        NaN allowed: a diverged epoch's loss), so a reader never meets them one epoch later."""
        for name in PER_EPOCH:
            values = getattr(self, name)
            if not isinstance(values, list) or not all(_is_real(v) for v in values):
                raise InvalidValueError(f"History {name} must be a list of numbers, got {values!r:.80}")
        for name in ("metric_name", "stopped", "data"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise InvalidValueError(f"History {name} must be a string or None, got {getattr(self, name)!r:.80}")
        if self.best_epoch is not None:
            _checks.integer("History best_epoch", self.best_epoch, 1)
        _checks.flag("History interrupted", self.interrupted)

    def watched(self) -> list:
        """What ``patience`` and ``restore_best`` judge per epoch, lower being better: minus the
        validation metric, else the validation loss, when the last epoch has one, else the training
        loss (a run resumed without validation data); an epoch without validation (NaN) is inf."""
        for values, sign in ((self.val_metric, -1), (self.val_loss, 1), (self.loss, 1)):
            if values is self.loss or len(values) == self.epochs > 0:
                return [math.inf if math.isnan(v) else sign * v for v in values]

    def add_validation(self, loss, metric=None):
        """The last epoch's validation loss (and metric), after NaN for the epochs before it without one (a run
        resumed with validation data from one without), so ``val_loss[e]`` is epoch ``e``'s."""
        for values, value in ((self.val_loss, loss), (self.val_metric, metric)):
            if value is not None:
                values.extend([math.nan] * (self.epochs - 1 - len(values)))
                values.append(value)

    @property
    def epochs(self) -> int:
        return len(self.loss)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        """The inverse of ``as_dict`` (the lists copied, their numbers as floats); anything else
        (unknown keys, non-numbers in the per-epoch lists) is refused with an InvalidValueError naming it."""
        if not isinstance(d, dict):
            raise InvalidValueError(f"history must be a dict (History.as_dict()), got a {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InvalidValueError(f"history has unknown fields {unknown}; known: {sorted(known)}")
        d = dict(d)
        for name in PER_EPOCH:  # NaN in a validation list: an epoch without validation (add_validation)
            values, nan = d.get(name, []), name.startswith("val_")
            if not isinstance(values, list) or not all(_is_number(v) or nan and _is_real(v) and v != v for v in values):
                raise InvalidValueError(f"history {name} must be a list of numbers, got {values!r:.80}")
            d[name] = [float(v) for v in values]
        for name in ("metric_name", "stopped", "data"):
            if d.get(name) is not None and not isinstance(d[name], str):
                raise InvalidValueError(f"history {name} must be a string or None, got {d[name]!r:.80}")
        if d.get("best_epoch") is not None:
            d["best_epoch"] = _checks.integer("history best_epoch", d["best_epoch"], 1)
        d["interrupted"] = _checks.flag("history interrupted", d.get("interrupted", False))
        _check_epochs(d)
        return cls(**d)

    def summary(self, epoch: int) -> str:
        """One line describing epoch ``epoch`` (0-based)."""
        if _checks.integer("History.summary epoch", epoch, 0) >= self.epochs:
            raise InvalidValueError(f"History.summary: epoch {epoch} is past the {self.epochs} epoch(s) recorded "
                                    f"(epochs count from 0)")
        parts = [f"loss {self.loss[epoch]:.4f}"]
        # validation lists can be shorter (a resumed run without validation data)
        name = self.metric_name or "metric"
        if len(self.metric) > epoch:
            parts.append(f"{name} {self.metric[epoch]:.4f}")
        for key, values in (("val_loss", self.val_loss), (f"val_{name}", self.val_metric)):
            if len(values) > epoch and not math.isnan(values[epoch]):  # NaN: no validation that epoch
                parts.append(f"{key} {values[epoch]:.4f}")
        if len(self.samples_per_sec) > epoch:
            parts.append(f"{self.samples_per_sec[epoch]:,.0f} samples/s")
        return "  ".join(parts)


class EpochLog:
    """fit() callback writing one line per epoch to ``path``: CSV (``.csv``) or JSON lines
    (``.jsonl``, ``.json``, anything else), with epoch, loss, metrics, lr, seconds, samples/s.
    With ``append`` (a resumed run) the lines go after those already there, under the CSV
    header already written. The path is checked at once, the file written at the first line:
    a run refused before its first epoch leaves a file already there as it was. A file there
    that is not an epoch log (someone's data) is refused, unless ``overwrite=True``.

    Each line is written whole or not at all: the first one (without ``append``) replaces the file
    atomically, the next are appended, and a line that cannot be written (a full disk, a folder
    gone or made read-only) is cut off again and raised as a GpubpError naming the file, which
    keeps the lines before it (fit then stops, keeping the model: see ``fit``)."""

    def __init__(self, path, append=False, overwrite=False):
        # a folder, a missing one, another file than a log: refused now
        path = file_name("EpochLog path", os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else path)
        self.path = _checks.output_path("EpochLog path", path, is_epoch_log, "an epoch log", overwrite)
        self.json = not self.path.lower().endswith(".csv")
        self.append = _checks.flag("EpochLog append", append)
        self.started = False  # a line written: the next ones are appended
        self.columns = None  # the CSV columns, once the first line is made

    def on_epoch_end(self, epoch, model, history):
        if not isinstance(history, History):
            raise InvalidValueError(f"EpochLog.on_epoch_end: history must be a gpubp History, got a {type(history).__name__}")
        epoch = _checks.integer("EpochLog.on_epoch_end: epoch", epoch, minimum=0)
        if epoch >= history.epochs:
            raise InvalidValueError(f"EpochLog.on_epoch_end: epoch {epoch} is not in the history, which holds "
                                    f"{history.epochs} epoch(s)")
        h, name = history, history.metric_name
        missing = [f for f in ("lr", "epoch_time", "samples_per_sec") if len(getattr(h, f)) <= epoch]
        if missing:  # a History made by hand: said, not an IndexError
            raise InvalidValueError(f"EpochLog.on_epoch_end: the history has no {', '.join(missing)} for epoch {epoch} "
                                    f"(each per-epoch list needs an entry per epoch of loss)")
        row = {"epoch": epoch + 1, "loss": h.loss[epoch]}
        for key, values in ((name, h.metric), ("val_loss", h.val_loss), (f"val_{name}", h.val_metric)):
            if key and len(values) > epoch and not math.isnan(values[epoch]):  # NaN: no validation that epoch
                row[key] = values[epoch]
        row.update(lr=h.lr[epoch], seconds=h.epoch_time[epoch], samples_per_sec=h.samples_per_sec[epoch])
        row.update({k: float(v) for k, v in row.items() if k != "epoch"})  # NumPy numbers too (JSON takes floats)
        try:
            self._write(self._line(row), epoch, h.loss[epoch - 1] if epoch else None)
        except OSError as exc:
            kept = "the log keeps the lines written before it" if os.path.isfile(self.path) else "the log is gone"
            raise GpubpError(f"EpochLog: cannot write epoch {epoch + 1}'s line to {self.path} ({describe(exc)}); "
                             f"{kept}") from None

    def _line(self, row) -> bytes:
        """The line of ``row`` (after the CSV header, at a new file's first line)."""
        if self.json:
            return (json.dumps(row) + "\n").encode()
        text, header = io.StringIO(newline=""), self.columns is None
        if header:
            self.columns = self._csv_columns(list(row))
        writer = csv.DictWriter(text, fieldnames=self.columns, extrasaction="ignore")
        if header and not self.appending_to_lines():
            writer.writeheader()
        writer.writerow(row)
        return text.getvalue().encode()

    def appending_to_lines(self) -> bool:
        """Whether the next line goes after lines already in the file (a resumed run's, or this one's)."""
        return self.started or self.append and os.path.exists(self.path) and os.path.getsize(self.path) > 0

    def _csv_columns(self, columns):
        """This run's columns, or those of the header already in an appended file: lines under
        another header would not read back, so its columns are kept (a column it lacks is left
        out, with a warning)."""
        if self.started or not self.appending_to_lines():
            return columns
        with open(self.path, newline="") as f:
            header = next(csv.reader(f), None)
        if header and columns != header:
            warnings.warn(f"EpochLog: {self.path} has the columns {header}, this run writes {columns}; "
                          f"its lines keep the file's columns", GpubpWarning, stacklevel=4)
        return header or columns

    def _write(self, data, epoch, loss=None):
        """``data`` appended whole (a failed write is cut off again), or at a new log's first line
        written atomically, so the file replaced is kept whole when it cannot be."""
        kept = None if self.started or not self.appending_to_lines() else self._before(epoch, loss)
        if kept is not None or not self.appending_to_lines():  # a new log, or one cut back to this epoch
            write_atomically(self.path, lambda f: f.write((kept or b"") + data))
            self.started = True
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_BINARY", 0))  # gone: said, not made anew
        try:
            size = os.fstat(fd).st_size
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            except BaseException:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)  # no half line for the next one to follow
                raise
        finally:
            os.close(fd)
        self.started = True

    def _before(self, epoch, loss):
        """A resumed run's first line (``epoch``, from 0): the bytes of the log up to its last line of the
        epoch resumed from (``epoch``, from 1; its loss the history's, ``loss``: the saved run's line),
        when lines of later epochs follow it (a run went on past the checkpoint this one resumed from,
        then stopped: killed between checkpoints), said in a warning; None when none do (a log of
        other runs, or before this one's first epoch, is left whole). Was: this run's lines followed
        them, two of each such epoch."""
        with open(self.path, "rb") as f:
            lines = f.readlines()
        read = [_epoch_and_loss(line) for line in lines]
        at = max((i for i, e in enumerate(read) if e == (epoch, loss)), default=None) if epoch else None
        found = [e[0] for e in read[at + 1:] if e and e[0] > epoch] if at is not None else []
        if not found:
            return None
        last = max(found)
        warnings.warn(f"EpochLog: {self.path} holds lines of epochs {epoch + 1} to {last}, past the epoch {epoch} this "
                      f"run resumed from (a run that went on after its last checkpoint): they are cut off, and this "
                      f"run's lines follow epoch {epoch}", GpubpWarning, stacklevel=5)
        return b"".join(lines[:at + 1])

    def close(self):
        """Nothing to do: each line is written and its file closed at once (kept for callers)."""


def _epoch_and_loss(line):
    """(epoch, loss) of one line of an epoch log (bytes: a JSON line, or a CSV row whose first columns
    are epoch and loss), None for the CSV header or a line that is not one."""
    try:
        if line.startswith(b"{"):
            row = json.loads(line)
            return int(row["epoch"]), float(row["loss"])
        epoch, loss = line.split(b",")[:2]
        return int(epoch), float(loss)
    except (ValueError, KeyError, TypeError):
        return None


def is_epoch_log(path) -> bool:
    """Whether ``path`` is a log written by EpochLog: its first line is a CSV header, or a JSON
    line, whose first columns are ``epoch`` and ``loss``."""
    with open(path, newline="") as f:
        first = f.readline(1 << 16)
    if first.startswith("{"):
        row = json.loads(first)
        return isinstance(row, dict) and list(row)[:2] == ["epoch", "loss"]
    return first.rstrip("\r\n").split(",")[:2] == ["epoch", "loss"]


def _check_epochs(d) -> None:
    """One entry per epoch in every per-epoch list (validation lists may be shorter: a run resumed
    without validation data), none negative where a rate or a time is, best_epoch one of the epochs."""
    epochs = len(d.get("loss", []))
    for name in ("lr", "epoch_time", "samples_per_sec") + (("metric",) if d.get("metric_name") else ()):
        if len(d.get(name, [])) != epochs:
            raise InvalidValueError(f"history {name} has {len(d.get(name, []))} entries for {epochs} epochs of loss; "
                                    f"each epoch needs one")
    for name in ("metric", "val_metric"):
        if d.get(name) and not d.get("metric_name"):
            raise InvalidValueError(f"history {name} holds values but metric_name (what they measure) is None")
    for name in ("metric", "val_loss", "val_metric"):
        if len(d.get(name, [])) > epochs:
            raise InvalidValueError(f"history {name} has {len(d[name])} entries, more than its {epochs} epochs")
    for name in ("lr", "epoch_time", "samples_per_sec"):
        if any(v < 0 for v in d.get(name, [])):
            raise InvalidValueError(f"history {name} holds a negative value: {min(d[name])}")
    if d.get("best_epoch") is not None and d["best_epoch"] > epochs:
        raise InvalidValueError(f"history best_epoch {d['best_epoch']} is past its {epochs} epochs")


def _is_real(v) -> bool:
    """A real number (NumPy's too), not a bool."""
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _is_number(v) -> bool:
    """A real number that a float holds (NumPy's too), not a bool, not NaN."""
    if not isinstance(v, numbers.Real) or isinstance(v, (bool, np.bool_)):
        return False
    try:
        return not math.isnan(float(v))
    except OverflowError:  # an int past the float range
        return False
