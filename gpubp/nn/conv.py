"""2-d convolution (NCHW) by im2col + one GEMM: its windows come from ``windows.windows``
and its input gradient goes back through ``windows.col2im`` (or, for stride 1, by whole rows).
"""
from __future__ import annotations

import numpy as np

from .. import _checks
from ..errors import InvalidValueError, ShapeError
from ..initializers import INITIALIZERS, addressable, checked_weight, draw
from .arrays import FAILURES, core_error, into, work
from .base import Layer
from .windows import DEVICE_OPTION, col2im, output_size, pair, placed, same_padding, torch_options, windows

TORCH_OPTIONS = {  # PyTorch's Conv2d arguments that Conv2D takes only at their defaults: see torch_options
    "dilation": ((1, (1, 1)), "its windows are contiguous (dilation=1)"),
    "groups": ((1,), "every output channel sees every input channel (groups=1)"),
    "padding_mode": (("zeros",), "it pads with zeros (padding_mode='zeros')"),
    "device": DEVICE_OPTION, "dtype": DEVICE_OPTION}


def conv_weight(init, rng, fan_in, fan_out, shape):
    """A conv weight of ``shape`` drawn from the host ``rng`` (float64) by the initialiser named
    ``init`` (``initializers.draw``) with fan_in = C kh kw and fan_out = O kh kw, as PyTorch counts
    them; or what ``init(rng, fan_in, fan_out, shape)`` returns (``checked_weight`` checks it)."""
    if callable(init):
        return init(rng, fan_in, fan_out, shape)
    if not (isinstance(init, str) and init in INITIALIZERS):
        raise InvalidValueError(f"unknown conv initialiser {init!r}; choose one of {sorted(INITIALIZERS)}, or a "
                                f"callable init(rng, fan_in, fan_out, shape)")
    return draw(init, rng, fan_in, fan_out, shape)


class Conv2D(Layer):
    """Y[n, o] = b[o] + sum_{c,i,j} W[o, c, i, j] Xp[n, c, oh*sh + i, ow*sw + j]  (NCHW, PyTorch's Conv2d).

    As a GEMM per image: cols = im2col(X) of shape (N, C kh kw, OH OW), W_col = W reshaped to
    (O, C kh kw), and ``Y_n = W_col @ cols_n + b`` lands directly in NCHW order. With
    delta = dY viewed as (N, O, OH OW), no copy::

        dW = sum_n delta_n @ cols_n^T      db = sum_{n,p} delta      dX = col2im(W_col^T @ delta_n)

    For stride 1, dX goes by whole rows (``_backward_rows``). cols, the padded input and the
    backward's work arrays are made once per input shape and kept (``arrays.work``; dropped when
    the layer moves to another backend), and every product runs through ``backend.matmul`` into
    one of them: a planned step allocates nothing, and on a GPU it can be captured as a CUDA graph
    (``capturable``). No array handed to a caller is ever written again.

    W has shape (out_channels, in_channels, kh, kw) as in PyTorch; b is (out_channels,),
    initialised to zero (as ``Dense`` does). ``init`` names a He draw scaled by fan-in =
    in_channels kh kw or a Glorot draw by fan-in + fan-out (out_channels kh kw), see
    ``conv_weight``; He uniform by default, for ReLU nets.
    ``stride``, ``padding`` (zeros, both sides) and ``kernel_size`` take an int or (h, w);
    ``padding`` also PyTorch's "valid" (0) and "same" (stride 1, odd kernels: (k - 1) / 2).
    PyTorch's dilation, groups, padding_mode, device and dtype are taken by keyword at their
    defaults only (``TORCH_OPTIONS``).
    """

    capturable = True  # products by backend.matmul into work arrays (gpubp's GEMM in a capture), nothing allocated
    in_channels, out_channels, kernel_size, stride, padding, bias, init = (_checks.Fixed() for _ in range(7))

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 init="he_uniform", seed=None, backend=None, **options):
        super().__init__(backend)
        torch_options("Conv2D", options, TORCH_OPTIONS)
        for what, n in (("in_channels", in_channels), ("out_channels", out_channels)):
            if _checks.integer(f"Conv2D {what}", n) < 1:
                raise ShapeError(f"Conv2D needs {what} >= 1, got {n!r}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = pair(kernel_size, "Conv2D kernel_size")
        self.stride = pair(stride, "Conv2D stride")
        self.padding = same_padding(padding, self.kernel_size, self.stride, "Conv2D padding")
        addressable(f"Conv2D({in_channels}, {out_channels}) weight W",
                    (self.out_channels, self.in_channels, *self.kernel_size))
        self.bias = _checks.flag("Conv2D bias", bias, "" if not isinstance(bias, (int, tuple)) else
                                 " (PyTorch's Conv2d takes dilation in that place, which gpubp's does not: give "
                                 "bias by name)")
        self.init = init
        if not callable(init):
            conv_weight(init, np.random.default_rng(0), 1, 1, (0,))  # an unknown name fails here
        self.seed, self._params = _checks.seed("Conv2D seed", seed), None
        self.X = self.cols = None

    def __repr__(self):
        extra = (f", padding={self.padding}" if any(self.padding) else "") + ("" if self.bias else ", bias=False")
        return (f"Conv2D({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}{extra})")

    def config(self):
        return {"type": type(self).__name__, "in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": list(self.padding), "bias": self.bias,
                "init": self.init if isinstance(self.init, str) else "he_uniform"}

    def parameter_shapes(self):
        W = (self.out_channels, self.in_channels, *self.kernel_size)
        return {"W": W, **({"b": (self.out_channels,)} if self.bias else {})}

    @property
    def W_rows(self) -> int:
        """C kh kw: the length of one window, a row of W_col (spelled out: reshapes of an empty batch need it)."""
        return self.in_channels * self.kernel_size[0] * self.kernel_size[1]

    def drawn_parameters(self, rng, prefix=""):
        """W from ``conv_weight`` (checked), b = 0; nothing set (``Layer.drawn_arrays``)."""
        kh, kw = self.kernel_size
        fan_in, fan_out = self.in_channels * kh * kw, self.out_channels * kh * kw
        shape = self.parameter_shapes()["W"]
        W = checked_weight(conv_weight(self.init, rng, fan_in, fan_out, shape), shape, f"{self!r} parameter {prefix}W")
        with self.backend.activate():
            return {"W": self.backend.asarray(W), **({"b": self.backend.zeros((self.out_channels,))} if self.bias else {})}

    def output_form(self, form):
        """(4, out_channels) for images of in_channels (``Layer.output_form``)."""
        ndim, channels = form
        if ndim not in (None, 4) or channels not in (None, self.in_channels):
            raise ShapeError(f"expects images of {self.in_channels} channel{'s' * (self.in_channels != 1)} "
                             f"(N, {self.in_channels}, H, W)")
        return 4, self.out_channels

    def output_shape(self, shape):
        """(N, out_channels, OH, OW) for inputs of ``shape``; a ShapeError naming the layer if they do not fit."""
        if isinstance(shape, (tuple, list)) and len(shape) in (2, 3):  # images short of an axis: said which
            raise ShapeError(f"{self!r} expects NCHW (4-d) inputs, got shape {tuple(shape)}: {self._missing(shape)}")
        OH, OW = output_size(self, shape, self.kernel_size, self.stride, self.padding)  # shape is 4 numbers now
        if shape[1] != self.in_channels:
            hint = (" (channels last? NumPy's X.transpose(0, 3, 1, 2) makes NHWC images NCHW)"
                    if shape[3] == self.in_channels else "")
            raise ShapeError(f"{self!r} expects {self.in_channels} input channels (NCHW), got shape "
                             f"{tuple(shape)}{hint}")
        return shape[0], self.out_channels, OH, OW

    def _missing(self, shape) -> str:
        """What a 2-d or 3-d input probably is, and the NumPy that makes it NCHW."""
        if len(shape) == 3:
            one = "; one image (C, H, W)? X[None] makes it a batch of one" if shape[0] == self.in_channels else ""
            return f"(N, H, W) images without a channel axis? X[:, None] makes them (N, 1, H, W){one}"
        one = "; one (H, W) image? X[None, None] makes it a batch of one" if self.in_channels == 1 else ""
        return f"rows of C H W pixels each? X.reshape(len(X), C, H, W) makes them images{one}"

    def forward(self, X, out=None):
        """Y (N, O, OH, OW), written into ``out`` when given (a step plan's buffer); X and out checked."""
        if getattr(X, "ndim", None) in (2, 3):
            self.output_shape(X.shape)  # refused saying which axis is missing
        self._check_forward(X, out, ndim=4)
        return self._forward(X, out)

    def _forward(self, X, out=None):
        try:
            backend, (N, O, OH, OW) = self.backend, self.output_shape(X.shape)
            win = windows(backend.xp, self._padded(X), self.kernel_size, self.stride)  # (N, C, OH, OW, kh, kw)
            cols = work(self, "cols", (N, win.shape[1], *self.kernel_size, OH, OW), X.dtype)
            cols[...] = win.transpose(0, 1, 4, 5, 2, 3)  # im2col: the one copy of the windows
            cols = cols.reshape(N, self.W_rows, OH * OW)  # (N, C kh kw, OH OW)
            direct = out is not None and out.flags.c_contiguous  # then Y is computed in out itself
            Y = out if direct else backend.empty((N, O, OH, OW), X.dtype) if out is None else \
                work(self, "Y", (N, O, OH, OW), X.dtype)
            Y_rows = Y.reshape(N, O, OH * OW)
            backend.matmul(self.params["W"].reshape(O, -1), cols, out=Y_rows)  # Y_n = W_col @ cols_n
            if self.bias:
                Y_rows += self.params["b"][:, None]
            Y = Y if out is None or direct else into(out, Y)
        except FAILURES as exc:  # a bound plan's buffers that do not fit: said, not NumPy's words
            raise core_error(self, "forward", exc, X=X, out=out) from None
        self.cols, self.X = cols, X
        return Y

    def _padded(self, X):
        """X itself, or X zero-padded by ``padding`` in a work array (its zeros written once)."""
        (N, C, H, W), (ph, pw) = X.shape, self.padding
        if not (ph or pw):
            return X
        Xp = work(self, "Xp", (N, C, H + 2 * ph, W + 2 * pw), X.dtype, init=lambda a: a.fill(0))
        return placed(Xp, X, self.padding)

    def backward(self, dY, out=None):
        """dX, written into ``out`` when given; dY and out checked before any gradient is added."""
        self._check_backward(dY, out)
        return self._backward(dY, out)

    def _backward(self, dY, out=None):
        delta = self._backward_params(dY)
        try:
            (N, C, H, W), (kh, kw), (OH, OW) = self.X.shape, self.kernel_size, dY.shape[2:]
            W_col, (ph, pw) = self.params["W"].reshape(self.out_channels, -1), self.padding
            if self.stride == (1, 1):
                dX = self._backward_rows(W_col, delta.reshape(N, self.out_channels, OH, OW), out)
            else:
                dcols = work(self, "dcols", (N, self.W_rows, OH * OW), dY.dtype)
                self.backend.matmul(W_col.T, delta, out=dcols)  # W_col^T @ delta_n
                dXp = work(self, "dXp", (N, C, H + 2 * ph, W + 2 * pw), dY.dtype) if ph or pw else None
                dX = col2im(self.backend.xp, dcols.reshape(N, C, kh, kw, OH, OW), self.X.shape, self.stride,
                            self.padding, out=out, work=dXp)
            return dX if dX is out else into(out, dX)
        except FAILURES as exc:
            raise core_error(self, "backward", exc, dY=dY, out=out) from None

    def _backward_rows(self, W_col, delta, out=None):
        """dX for stride 1, the same sums as col2im by whole rows: delta is padded with zeros to the
        padded input's width Wp, so dcols = W_col^T @ delta_n holds rows of Wp entries and kernel
        offset (i, j) adds one contiguous run to the flattened dXp, at i Wp + j (the zero columns
        land on the next row's first entries, harmlessly; the run stops before the image ends)."""
        xp, (N, O, OH, OW), (N, C, H, W) = self.backend.xp, delta.shape, self.X.shape
        (kh, kw), (ph, pw), Wp = self.kernel_size, self.padding, OW + self.kernel_size[1] - 1
        wide = work(self, "delta", (N, O, OH, Wp), delta.dtype, init=lambda a: a.fill(0))
        wide[..., :OW] = delta  # columns OW.. stay zero
        dcols = work(self, "dcols", (N, C * kh * kw, OH * Wp), delta.dtype)
        self.backend.matmul(W_col.T, wide.reshape(N, O, OH * Wp), out=dcols)  # W_col^T @ delta_n, rows Wp wide
        dcols, run = dcols.reshape(N, C, kh, kw, OH * Wp), OH * Wp - (kw - 1)
        padded = ph or pw
        direct = not padded and out is not None and out.flags.c_contiguous  # dXp can be out itself
        if direct:
            dXp = out.reshape(N, C, H * W)
        elif not padded and out is None:  # handed to the caller: an array of its own
            dXp = xp.empty((N, C, H * W), dtype=delta.dtype)
        else:
            dXp = work(self, "dXp", (N, C, (H + 2 * ph) * Wp), delta.dtype)
        dXp.fill(0)
        for i in range(kh):
            for j in range(kw):
                entry = dXp[:, :, i * Wp + j:i * Wp + j + run]
                entry += dcols[:, :, i, j, :run]
        if direct:
            return out
        dXp = dXp.reshape(N, C, H + 2 * ph, Wp)
        inner = dXp[:, :, ph:ph + H, pw:pw + W] if padded else dXp
        if out is None:
            return xp.ascontiguousarray(inner) if padded else dXp
        return into(out, inner)

    def backward_params(self, dY):
        """dW and db only (no dX, e.g. for the first layer); returns delta as (N, O, OH OW)."""
        self._check_backward(dY)
        return self._backward_params(dY)

    def _backward_params(self, dY):
        try:
            O, shape = self.out_channels, self.parameter_shapes()["W"]
            delta = dY.reshape(dY.shape[0], O, dY.shape[2] * dY.shape[3])

            def dW(out):  # dW^T = sum_n cols_n @ delta_n^T, summed into grads["W"] viewed as (C kh kw, O)
                per_image = work(self, "dW", (delta.shape[0], self.W_rows, O), delta.dtype)  # BLAS likes this side
                self.backend.matmul(self.cols, delta.transpose(0, 2, 1), out=per_image)
                view = out is not None and out.flags.c_contiguous  # else reshape would copy: the sum lost
                dWt = per_image.sum(axis=0, out=out.reshape(O, -1).T if view else None)
                return dWt.T.reshape(shape) if out is None or view else into(out, dWt.T.reshape(shape))
            self._accumulate("W", dW)
            if self.bias:
                self._accumulate("b", lambda out: delta.sum(axis=(0, 2), out=out))  # db = sum_{n,p} delta
            self._grads_zero = self._grads_stale = False
            return delta
        except FAILURES as exc:
            raise core_error(self, "backward", exc, dY=dY, X=self.X) from None

    def _clear_cache(self):
        super()._clear_cache()
        self.cols = None
