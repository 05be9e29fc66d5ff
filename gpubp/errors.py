"""gpubp's own exception types: every mistake a user can make is one of these.

Each also derives from the matching builtin (ValueError, TypeError, ...) so code
that catches the builtin keeps working.
"""


class GpubpError(Exception):
    """Base class of every error gpubp raises on purpose."""


class ShapeError(GpubpError, ValueError):
    """An array has the wrong number of dimensions or the wrong size."""


class DTypeError(GpubpError, TypeError):
    """An array has the wrong dtype (integer where float is needed, float32 vs float64)."""


class DeviceError(GpubpError, RuntimeError):
    """An array lives on another device, or the requested device is unusable."""


class InvalidValueError(GpubpError, ValueError):
    """A value outside what is allowed: a class label out of range, an unknown name."""


class StateError(GpubpError, RuntimeError):
    """A call out of order, e.g. ``backward`` before ``forward``."""


class NumericalError(GpubpError, FloatingPointError):
    """NaN or Inf where finite numbers are required."""


class OutOfMemoryError(GpubpError, MemoryError):
    """The device ran out of memory; the message says how much was asked for."""


class CheckpointError(GpubpError, ValueError):
    """A checkpoint file is missing, unreadable or not a gpubp checkpoint."""


class GradcheckError(GpubpError, AssertionError):
    """Backprop disagrees with finite differences; ``.report`` says where."""

    def __init__(self, report):
        super().__init__(f"gradients out of tolerance:\n{report}")
        self.report = report


class GpubpWarning(UserWarning):
    """Something a user should know that does not stop the work (the CLI prints it in one line)."""
