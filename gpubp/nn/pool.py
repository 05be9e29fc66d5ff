"""Pooling over NCHW windows, PyTorch's defaults: no padding, floor mode, stride = kernel size
(PyTorch's padding, ceil_mode and the like are taken by keyword at those defaults only).

MaxPool2D works one kernel offset at a time (``windows.tap``: the (i, j) entries of every
window, a strided view), so each step is one vectorised operation over the output;
AvgPool2D takes its windows from ``windows.windows`` and sends gradients back through
``windows.col2im``, its adjoint. Overlapping windows (stride < kernel) add up correctly.
"""
from __future__ import annotations

from .. import _checks
from ..errors import InvalidValueError, ShapeError
from .arrays import FAILURES, core_error, into, shape_error
from .base import Layer
from .windows import col2im, output_size, pair, tap, torch_options, windows

_PADDING = ((0, (0, 0)), "it does not pad (padding=0)")
_CEIL = ((False,), "it uses floor mode (ceil_mode=False): rows and columns no whole window covers are left out")


def _show(hw):
    return hw[0] if hw[0] == hw[1] else hw


class _Pool2D(Layer, abstract=True):
    """Shared by the windowed pools: arguments, checks, and the saved input X."""

    kernel_size, stride = _checks.Fixed(), _checks.Fixed()  # the window: set once
    TORCH_OPTIONS: dict = {}  # PyTorch's arguments taken by keyword at their defaults only: see torch_options

    def __init__(self, kernel_size, stride=None, *unsupported, backend=None, **options):
        super().__init__(backend)
        name = type(self).__name__
        torch_options(name, options, self.TORCH_OPTIONS)
        if unsupported:  # PyTorch's padding, dilation, ceil_mode, once taken for a device name
            raise InvalidValueError(f"{name} takes kernel_size and stride, got more arguments {unsupported!r:.60}: "
                                    f"it has no padding, dilation or ceil_mode (PyTorch's {name[:-2]}2d has); "
                                    f"pass backend= by keyword")
        self.kernel_size = pair(kernel_size, f"{name} kernel_size")
        self.stride = self.kernel_size if stride is None else pair(stride, f"{name} stride")
        self.X = None

    def __repr__(self):
        return f"{type(self).__name__}(kernel_size={_show(self.kernel_size)}, stride={_show(self.stride)})"

    def config(self):
        return {"type": type(self).__name__, "kernel_size": list(self.kernel_size), "stride": list(self.stride)}

    def output_shape(self, shape):
        """(N, C, OH, OW) for inputs of ``shape``; a ShapeError naming the layer if the window does not fit."""
        OH, OW = output_size(self, shape, self.kernel_size, self.stride)  # shape is 4 numbers now
        return (*shape[:2], OH, OW)

    def forward(self, X, out=None):
        """Y (N, C, OH, OW), written into ``out`` when given (a step plan's buffer); X and out checked."""
        self._check_forward(X, out, ndim=4)
        return self._forward(X, out)

    def backward(self, dY, out=None):
        """dX, written into ``out`` when given; dY and out checked first."""
        self._check_backward(dY, out)
        return self._backward(dY, out)


class MaxPool2D(_Pool2D):
    """Y[n, c, oh, ow] = max_{i,j} X[n, c, oh*sh + i, ow*sw + j]  (PyTorch's MaxPool2d, no padding).

    Forward takes the maximum over the kh kw kernel offsets (t = i kw + j), each the strided
    view x_t = X[:, :, i::sh, j::sw] (``tap``), from the last offset back (suffix maxima S_t),
    and marks each window's winner::

        S_T = -inf      S_t = max(x_t, S_{t+1})  (NaN propagates, as in PyTorch)      Y = S_0
        c_t = [not x_t < S_{t+1}]  and  [S_{t+1} is not NaN]
        won_t = c_t and not c_s for any s < t

    (c_t: x_t is at least every later entry, or is NaN with no NaN after it), so ties go to the
    first maximum in row-major window order and a window holding NaN to its last NaN: what
    PyTorch's kernels choose. The NaN test reads only S (contiguous), so NaN-free inputs cost
    what they did before.
    The gradient goes only to the winner: dX[:, :, i::sh, j::sw] += dY * won_t (a plain write
    when the windows are disjoint).
    """

    TORCH_OPTIONS = {"padding": _PADDING, "dilation": ((1, (1, 1)), "its windows are contiguous (dilation=1)"),
                     "return_indices": ((False,), "forward returns Y only (return_indices=False)"), "ceil_mode": _CEIL}

    def _forward(self, X, out=None):
        (kh, kw), xp = self.kernel_size, self.backend.xp
        try:
            out_hw = output_size(self, X.shape, self.kernel_size, self.stride)
            taps = [tap(X, i, j, out_hw, self.stride) for i in range(kh) for j in range(kw)]
            Y = taps[-1].copy() if out is None else into(out, taps[-1])  # S_{T-1}
            won_all = xp.empty((len(taps), *Y.shape), dtype=bool)
            won_all[-1] = True  # c_{T-1}: S_T = -inf
            nan = xp.empty(Y.shape, dtype=bool)
            for x, c in zip(taps[-2::-1], won_all[-2::-1]):
                xp.logical_not(xp.less(x, Y, out=c), out=c)
                xp.greater(c, xp.isnan(Y, out=nan), out=c)  # c and not nan
                xp.maximum(Y, x, out=Y)
            if len(taps) > 1:  # the first t with c_t wins; c_{T-1} takes what is left
                free = xp.logical_not(won_all[0], out=nan)
                for won in won_all[1:-1]:
                    won &= free
                    free ^= won
                won_all[-1] = free
        except FAILURES as exc:  # a bound plan's buffers that do not fit: said, not NumPy's words
            raise core_error(self, "forward", exc, X=X, out=out) from None
        self.X, self.won = X, won_all
        return Y

    def _backward(self, dY, out=None):
        xp, (kh, kw), (sh, sw) = self.backend.xp, self.kernel_size, self.stride
        try:
            dX = xp.zeros(self.X.shape, dtype=dY.dtype) if out is None else into(out, 0)
            disjoint = sh >= kh and sw >= kw  # then each input element is in at most one window
            for t, won in enumerate(self.won):
                entry = tap(dX, t // kw, t % kw, dY.shape[2:], self.stride)
                if disjoint:
                    xp.multiply(dY, won, out=entry)
                else:
                    entry += dY * won
        except FAILURES as exc:
            raise core_error(self, "backward", exc, dY=dY, out=out) from None
        return dX

    def _clear_cache(self):
        self.X = self.won = None


class AvgPool2D(_Pool2D):
    """Y[n, c, oh, ow] = (1 / (kh kw)) sum_{i,j} X[n, c, oh*sh + i, ow*sw + j]  (PyTorch's AvgPool2d).

    Every window entry gets an equal share: dX = col2im(dY / (kh kw) broadcast over the window).
    """

    TORCH_OPTIONS = {"padding": _PADDING, "ceil_mode": _CEIL,
                     "count_include_pad": ((True, False), ""),  # no padding: either means the same
                     "divisor_override": ((None,), "it divides by the window's size kh kw (divisor_override=None)")}

    def _forward(self, X, out=None):
        try:
            Y = windows(self.backend.xp, X, self.kernel_size, self.stride).mean(axis=(4, 5), out=out)
        except FAILURES as exc:  # a bound plan's buffers that do not fit: said, not NumPy's words
            raise core_error(self, "forward", exc, X=X, out=out) from None
        self.X = X
        return Y

    def _backward(self, dY, out=None):
        xp, (kh, kw) = self.backend.xp, self.kernel_size
        try:
            N, C, OH, OW = dY.shape
            dwin = xp.broadcast_to((dY / (kh * kw))[:, :, None, None], (N, C, kh, kw, OH, OW))
            return into(out, col2im(xp, dwin, self.X.shape, self.stride))
        except FAILURES as exc:
            raise core_error(self, "backward", exc, dY=dY, out=out) from None


class GlobalAvgPool2D(Layer):
    """Y[n, c] = (1 / (H W)) sum_{h,w} X[n, c, h, w], shape (N, C) (PyTorch's AdaptiveAvgPool2d(1)
    then flatten); dX[n, c, h, w] = dY[n, c] / (H W)."""

    def __init__(self, *unsupported, backend=None, **options):
        super().__init__(backend)
        torch_options("GlobalAvgPool2D", options, {"output_size": ((1, (1, 1)), "it averages each channel to one "
                                                                                 "value (output_size=1)")})
        if unsupported:  # PyTorch's AdaptiveAvgPool2d(1), once taken for a device name
            raise InvalidValueError(f"GlobalAvgPool2D takes no arguments but backend=, got {unsupported!r:.60}: "
                                    f"it averages each channel to one value (PyTorch's AdaptiveAvgPool2d(1) "
                                    f"then flatten)")
        self.X = None

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
            H, W = self.X.shape[2:]
            dX = self.backend.xp.empty(self.X.shape, dtype=dY.dtype) if out is None else out
            dX[...] = (dY / (H * W))[:, :, None, None]
        except FAILURES as exc:
            raise core_error(self, "backward", exc, dY=dY, out=out) from None
        return dX
