"""A progress bar for long work (fit's epochs, gradcheck's entries): tqdm (``tqdm.auto``: a
widget in notebooks, a bar fitted to the terminal's width), on stderr only when it is a
terminal unless forced; a plain one-line fallback where tqdm is not installed."""
from __future__ import annotations

import sys
import time

from . import _checks
from .errors import InvalidValueError

try:  # a dependency (pyproject.toml); the plain line below covers an install without it
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover
    tqdm = None


class Progress:
    """``total`` units of work (``unit``: "epoch", "entry"), ``update(done, text)`` as they end."""

    def __init__(self, total: int, enabled=None, stream=None, unit="epoch"):
        total = _checks.integer("Progress total", total, 0)
        if stream is not None and not callable(getattr(stream, "write", None)):
            raise InvalidValueError(f"Progress stream must be a text stream (an object with write, such as "
                                    f"sys.stderr) or None (stderr), got {stream!r:.60}")
        if not isinstance(unit, str):
            raise InvalidValueError(f"Progress unit must be a word such as 'epoch', got {unit!r:.60}")
        self.stream = sys.stderr if stream is None else stream
        self.enabled = _isatty(self.stream) if enabled is None else \
            _checks.flag("Progress enabled", enabled, " or None")
        self.total, self.unit, self.start, self.bar = total, unit, time.perf_counter(), None
        if self.enabled and tqdm is not None:
            self.bar = tqdm(total=total, unit=unit, file=self.stream, dynamic_ncols=True, leave=True,
                            bar_format=unit + " {n_fmt}/{total_fmt} |{bar}| {elapsed}<{remaining}{postfix}")

    def update(self, done: int, text: str = ""):
        """``done`` units of the total are finished (a resumed run starts past 0)."""
        done = _checks.integer("Progress.update: done", done, 0)
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.n = done
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.refresh()
            return
        elapsed = time.perf_counter() - self.start
        self.stream.write(f"\r{self.unit} {done}/{self.total}  {text}  {elapsed:.1f}s ")
        self.stream.flush()

    def epoch(self, epoch: int, text: str):
        """fit: epoch ``epoch`` (from 0) has ended, ``text`` its summary."""
        self.update(_checks.integer("Progress.epoch: epoch", epoch, 0) + 1, text)

    def close(self):
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
