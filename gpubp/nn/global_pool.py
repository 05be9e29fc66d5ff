"""Global average pooling: each channel of an image averaged to one value, (N, C, H, W) -> (N, C)."""
from __future__ import annotations

from ..errors import InvalidValueError, ShapeError
from .arrays import FAILURES, core_error, shape_error, work
from .base import Layer
from .windows import torch_options


class GlobalAvgPool2D(Layer):
    """Y[n, c] = (1 / (H W)) sum_{h,w} X[n, c, h, w], shape (N, C) (PyTorch's AdaptiveAvgPool2d(1)
    then flatten); dX[n, c, h, w] = dY[n, c] / (H W)."""

    capturable = True  # its one work array (dY / (H W)) is made once per shape (arrays.work)

    def __init__(self, *unsupported, backend=None, **options):
        super().__init__(backend)
        torch_options("GlobalAvgPool2D", options, {"output_size": ((1, (1, 1)), "it averages each channel to one "
                                                                                 "value (output_size=1)")})
        if unsupported:  # PyTorch's AdaptiveAvgPool2d(1), once taken for a device name
            raise InvalidValueError(f"GlobalAvgPool2D takes no arguments but backend=, got {unsupported!r:.60}: "
                                    f"it averages each channel to one value (PyTorch's AdaptiveAvgPool2d(1) "
                                    f"then flatten)")
        self.X = None

    def output_form(self, form):
        """Images of C channels give rows (N, C) (``Layer.output_form``)."""
        if form[0] not in (None, 4):
            raise ShapeError("expects images (N, C, H, W)")
        return 2, form[1]

    def output_shape(self, shape):
        """(N, C) for inputs of ``shape`` (N, C, H, W) with H, W >= 1, else a ShapeError."""
        try:
            if len(shape) != 4 or shape[2] * shape[3] == 0:
                raise ShapeError(f"GlobalAvgPool2D needs NCHW inputs with H, W >= 1, got shape {tuple(shape)}")
            return tuple(shape[:2])
        except FAILURES as exc:
            raise shape_error(self, shape, exc) from None

    def forward(self, X, out=None):
        self._check_forward(X, out, ndim=4)
        return self._forward(X, out)

    def _forward(self, X, out=None):
        try:
            Y = X.mean(axis=(2, 3), out=out)
        except FAILURES as exc:
            raise core_error(self, "forward", exc, X=X, out=out) from None
        self.X = X
        return Y

    def backward(self, dY, out=None):
        self._check_backward(dY, out)
        return self._backward(dY, out)

    def _backward(self, dY, out=None):
        try:
            (H, W), xp = self.X.shape[2:], self.backend.xp
            share = xp.divide(dY, H * W, out=work(self, "share", dY.shape, dY.dtype))
            dX = xp.empty(self.X.shape, dtype=dY.dtype) if out is None else out
            dX[...] = share[:, :, None, None]
        except FAILURES as exc:
            raise core_error(self, "backward", exc, dY=dY, out=out) from None
        return dX
