"""Training history and the text progress line fit() prints."""
from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field


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
    interrupted: bool = False        # True when Ctrl-C ended the run

    @property
    def epochs(self) -> int:
        return len(self.loss)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(**d)

    def summary(self, epoch: int) -> str:
        """One line describing epoch ``epoch`` (0-based)."""
        parts = [f"loss {self.loss[epoch]:.4f}"]
        # validation lists can be shorter (a resumed run without validation data)
        if self.metric_name and len(self.metric) > epoch:
            parts.append(f"{self.metric_name} {self.metric[epoch]:.4f}")
        if len(self.val_loss) > epoch:
            parts.append(f"val_loss {self.val_loss[epoch]:.4f}")
        if len(self.val_metric) > epoch:
            parts.append(f"val_{self.metric_name} {self.val_metric[epoch]:.4f}")
        parts.append(f"{self.samples_per_sec[epoch]:,.0f} samples/s")
        return "  ".join(parts)


class Progress:
    """A one-line progress display on stderr, only when it is a terminal (or forced)."""

    def __init__(self, epochs: int, enabled=None, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else bool(enabled)
        self.epochs, self.start = epochs, time.perf_counter()

    def epoch(self, epoch: int, text: str):
        if not self.enabled:
            return
        done = (epoch + 1) / self.epochs
        bar = "#" * int(24 * done) + "." * (24 - int(24 * done))
        elapsed = time.perf_counter() - self.start
        self.stream.write(f"\r[{bar}] epoch {epoch + 1}/{self.epochs}  {text}  {elapsed:.1f}s ")
        self.stream.flush()

    def close(self):
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
