"""Layers that only change an array's shape."""
from __future__ import annotations

from .. import _checks
from ..errors import InvalidValueError, ShapeError
from .arrays import FAILURES, core_error, into, shape_error
from .base import Layer
from .windows import torch_options

class Flatten(Layer):
    """Y = X with dims start_dim..end_dim merged into one (PyTorch's nn.Flatten: by default
    (N, C, H, W) -> (N, C H W)); dX = dY reshaped back to X's shape (views, no copies, for contiguous arrays)."""

    capturable = True  # a copy into the plan's buffer: nothing allocated
    start_dim, end_dim = _checks.Fixed(), _checks.Fixed()  # set once

    def __init__(self, start_dim: int = 1, end_dim: int = -1, backend=None, **options):
        torch_options("Flatten", options, {})  # a keyword neither PyTorch's Flatten nor gpubp's takes
        super().__init__(backend)
        self.start_dim, self.end_dim = (_checks.integer(f"Flatten {name}", dim)
                                        for name, dim in (("start_dim", start_dim), ("end_dim", end_dim)))
        if (self.start_dim < 0) == (self.end_dim < 0) and self.start_dim > self.end_dim:  # in any input's dims
            raise InvalidValueError(f"Flatten start_dim={self.start_dim} comes after end_dim={self.end_dim}: it "
                                    f"merges dims start_dim..end_dim (PyTorch refuses this order too)")
        self.X = None

    def __repr__(self):
        return f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim})"

    def config(self):
        return {"type": type(self).__name__, "start_dim": self.start_dim, "end_dim": self.end_dim}

    def output_form(self, form):
        """The axes start_dim..end_dim merged into one: axis 1 unknown where it was among them
        (``Layer.output_form``); with other dims than the default, unknown until the axes are."""
        ndim, channels = form
        if ndim is None:
            return (2, None) if (self.start_dim, self.end_dim) == (1, -1) else (None, None)
        if not (-ndim <= self.start_dim < ndim and -ndim <= self.end_dim < ndim):
            return None, None  # output_shape names it at the first forward
        start, end = self.start_dim % ndim, self.end_dim % ndim
        if start > end:
            return None, None
        if start == end:
            return ndim, channels
        return ndim - (end - start), (None if start <= 1 <= end else channels)

    def output_shape(self, shape):
        """``shape`` with dims start_dim..end_dim merged; a ShapeError when the input has too few dims."""
        try:
            nd = len(shape)
            start, end = self.start_dim % max(nd, 1), self.end_dim % max(nd, 1)
            if not (-nd <= self.start_dim < nd and -nd <= self.end_dim < nd) or start > end:
                known = -nd <= self.start_dim < nd and -nd <= self.end_dim < nd
                order = (f": start_dim {self.start_dim} is dim {start} there and end_dim {self.end_dim} dim {end}, "
                         f"before it") if known else ""
                raise ShapeError(f"{self!r} cannot flatten a {nd}-d input of shape {tuple(shape)}{order}")
            merged = 1
            for n in shape[start:end + 1]:
                merged *= n
            return (*shape[:start], merged, *shape[end + 1:])
        except FAILURES as exc:
            raise shape_error(self, shape, exc) from None

    def forward(self, X, out=None):
        """The reshaped view of X; with ``out`` (a step plan's buffer), copied into it."""
        self._check_forward(X, out)
        return self._forward(X, out)

    def _forward(self, X, out=None):
        try:
            Y = into(out, X.reshape(self.output_shape(X.shape)))
        except FAILURES as exc:
            raise core_error(self, "forward", exc, X=X, out=out) from None
        self.X = X
        return Y

    def backward(self, dY, out=None):
        self._check_backward(dY, out)
        return self._backward(dY, out)

    def _backward(self, dY, out=None):
        try:
            return into(out, dY.reshape(self.X.shape))
        except FAILURES as exc:
            raise core_error(self, "backward", exc, dY=dY, out=out) from None

