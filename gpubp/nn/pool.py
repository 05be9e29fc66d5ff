"""Pooling over NCHW windows with PyTorch's arguments and defaults: stride = kernel size, no
padding, floor mode. ``padding`` (at most half the kernel, PyTorch's rule) pads both sides of
each axis; ``ceil_mode`` keeps a last, partial window (PyTorch's rule of ``windows.output_size``);
AvgPool2D's ``count_include_pad`` and ``divisor_override`` choose its divisor. MaxPool2D's
``dilation`` and ``return_indices`` are taken at their defaults only (1, False).

A padded window reads ``Xp``: X placed at (ph, pw) in a larger array (``windows.padded``), -inf
around it for MaxPool2D, zeros for AvgPool2D, as far down and right as ceil mode's last window
reaches (what PyTorch's windows, cut at the padded input's edge, never read). MaxPool2D works one
kernel offset at a time (``windows.tap``: the (i, j) entries of every window, a strided view), so
each step is one vectorised operation over the output; AvgPool2D takes its windows from
``windows.windows`` and sends gradients back through ``windows.col2im``, its adjoint. Overlapping
windows add up correctly; the gradient of the padding is dropped. Unpadded, floor-mode pools
read X itself, as they always did.

Every array a step writes besides its output and dX (the padded input, MaxPool2D's masks, the
shares of dY, the padded gradient, AvgPool2D's divisor) is a work array made once per input shape
(``arrays.work``), and every operation writes into an array with ``out=``: a planned step allocates
nothing, so on a GPU it can be captured as a CUDA graph (``capturable``).
"""
from __future__ import annotations

from .. import _checks
from ..errors import InvalidValueError, ShapeError
from .arrays import FAILURES, core_error, into, work
from .base import Layer
from .windows import col2im, output_size, padded, pair, placed, tap, torch_options, windows


def _show(hw):
    return hw[0] if hw[0] == hw[1] else hw


class _Pool2D(Layer, abstract=True):
    """Shared by the windowed pools: arguments, checks, the padded geometry, and the saved input X."""

    capturable = True  # every array a step writes is made once per shape (arrays.work): nothing allocated
    kernel_size, stride, padding, ceil_mode = (_checks.Fixed() for _ in range(4))  # the windows: set once

    def __init__(self, kernel_size, stride, padding, ceil_mode, backend, options):
        super().__init__(backend)
        name = type(self).__name__
        torch_options(name, options, {})  # a keyword neither PyTorch's layer nor gpubp's takes
        self.kernel_size = pair(kernel_size, f"{name} kernel_size")
        self.stride = self.kernel_size if stride is None else pair(stride, f"{name} stride")
        self.padding = pair(padding, f"{name} padding", minimum=0)
        if any(p > k // 2 for p, k in zip(self.padding, self.kernel_size)):
            raise InvalidValueError(f"{name} padding must be at most half the kernel size (PyTorch's rule), got "
                                    f"padding={padding!r} for kernel_size={kernel_size!r}")
        self.ceil_mode = _checks.flag(f"{name} ceil_mode", ceil_mode)
        self.X = None

    def _options(self) -> dict:
        """The arguments at other values than PyTorch's defaults, beyond kernel_size and stride."""
        return {**({"padding": self.padding} if any(self.padding) else {}),
                **({"ceil_mode": True} if self.ceil_mode else {})}

    def __repr__(self):
        extra = "".join(f", {k}={_show(v) if isinstance(v, tuple) else v}" for k, v in self._options().items())
        return f"{type(self).__name__}(kernel_size={_show(self.kernel_size)}, stride={_show(self.stride)}{extra})"

    def config(self):
        """kernel_size and stride, and the other arguments where not at their defaults (a config
        without them, as older checkpoints hold, is a pool with PyTorch's defaults)."""
        options = {k: list(v) if isinstance(v, tuple) else v for k, v in self._options().items()}
        return {"type": type(self).__name__, "kernel_size": list(self.kernel_size), "stride": list(self.stride),
                **options}

    def output_form(self, form):
        """Images stay images of as many channels (``Layer.output_form``)."""
        if form[0] not in (None, 4):
            raise ShapeError("expects images (N, C, H, W)")
        return 4, form[1]

    def output_shape(self, shape):
        """(N, C, OH, OW) for inputs of ``shape``; a ShapeError naming the layer if no window fits."""
        OH, OW = output_size(self, shape, self.kernel_size, self.stride, self.padding, self.ceil_mode)
        if any(self.padding) and not shape[2] * shape[3]:  # a window of padding alone
            raise ShapeError(f"{self!r} needs inputs with H, W >= 1, got shape {tuple(shape)}")
        return (*shape[:2], OH, OW)

    def _geometry(self, shape):
        """((OH, OW), (Hp, Wp)): the output's size and the padded input's, H + 2 ph or, in ceil mode,
        as far as the last window reaches, (OH - 1) sh + kh, when that is more."""
        (OH, OW), (H, W) = self.output_shape(shape)[2:], shape[2:]
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (OH, OW), (max(H + 2 * ph, (OH - 1) * sh + kh), max(W + 2 * pw, (OW - 1) * sw + kw))

    def _padded(self, X, fill):
        """((OH, OW), Xp): X itself when no window reaches past it, else X placed in a padded work array
        of ``fill`` (one per input shape: its padding written once)."""
        out_hw, size = self._geometry(X.shape)
        if size == tuple(X.shape[2:]):
            return out_hw, X
        Xp = work(self, ("Xp", *X.shape[2:]), (*X.shape[:2], *size), X.dtype, init=lambda a: a.fill(fill))
        return out_hw, placed(Xp, X, self.padding)

    def _gradient_buffer(self, dY, out, zeroed=True):
        """Where the gradient of the padded input is summed (zeroed unless told not to): ``out`` itself when
        nothing is padded (a new array when no ``out`` is given: it is handed to the caller), else a work array."""
        size, shape = self._geometry(self.X.shape)[1], self.X.shape
        if size != tuple(shape[2:]):
            dXp = work(self, "dXp", (*shape[:2], *size), dY.dtype)
        elif out is None:
            return self.backend.xp.zeros(shape, dtype=dY.dtype)
        else:
            dXp = out
        if zeroed:
            dXp.fill(0)
        return dXp

    def _unpadded(self, dXp, out):
        """dX from dXp, the gradient of the padded input: X's own entries, written into ``out`` when given."""
        (H, W), (ph, pw) = self.X.shape[2:], self.padding
        if dXp.shape[2:] == (H, W):  # nothing padded
            return dXp if dXp is out else into(out, dXp)
        inner = dXp[:, :, ph:ph + H, pw:pw + W]
        return self.backend.xp.ascontiguousarray(inner) if out is None else into(out, inner)

    def forward(self, X, out=None):
        """Y (N, C, OH, OW), written into ``out`` when given (a step plan's buffer); X and out checked."""
        self._check_forward(X, out, ndim=4)
        return self._forward(X, out)

    def backward(self, dY, out=None):
        """dX, written into ``out`` when given; dY and out checked first."""
        self._check_backward(dY, out)
        return self._backward(dY, out)


class MaxPool2D(_Pool2D):
    """Y[n, c, oh, ow] = max_{i,j} Xp[n, c, oh*sh + i, ow*sw + j]  (PyTorch's MaxPool2d), Xp: X padded with -inf.

    Forward takes the maximum over the kh kw kernel offsets (t = i kw + j), each the strided
    view x_t = Xp[:, :, i::sh, j::sw] (``tap``), from the last offset back (suffix maxima S_t),
    and marks each window's winner::

        S_T = -inf      S_t = max(x_t, S_{t+1})  (NaN propagates, as in PyTorch)      Y = S_0
        c_t = [not x_t < S_{t+1}]  and  [S_{t+1} is not NaN]  and  [x_t is in X, not padding]
        won_t = c_t and not c_s for any s < t

    (c_t: x_t is at least every later entry, or is NaN with no NaN after it), so ties go to the
    first maximum in row-major window order and a window holding NaN to its last NaN: what
    PyTorch's kernels choose. Padding never wins, not even a tie with an input's -inf (PyTorch's
    windows skip it): every window holds some of X (padding <= kernel / 2, and ceil mode's last
    window starts in X or its top/left padding), and the last such entry has c_t, so a winner
    is always in X. The NaN test reads only S (contiguous), so NaN-free inputs cost what they
    did before. The gradient goes only to the winner: dXp[:, :, i::sh, j::sw] += dY * won_t (a
    plain write when the windows are disjoint), then dX = dXp without its padding.
    """

    TORCH_OPTIONS = {"dilation": ((1, (1, 1)), "its windows are contiguous (dilation=1)"),
                     "return_indices": ((False,), "forward returns Y only (return_indices=False)")}

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False,
                 backend=None, **options):
        torch_options("MaxPool2D", {"dilation": dilation, "return_indices": return_indices}, self.TORCH_OPTIONS)
        super().__init__(kernel_size, stride, padding, ceil_mode, backend, options)

    def _forward(self, X, out=None):
        (kh, kw), xp = self.kernel_size, self.backend.xp
        try:
            out_hw, Xp = self._padded(X, -xp.inf)
            offsets = [(i, j) for i in range(kh) for j in range(kw)]
            taps = [tap(Xp, i, j, out_hw, self.stride) for i, j in offsets]
            inside = None if Xp is X else work(self, ("inside", *X.shape[2:]), (1, 1, *Xp.shape[2:]), bool,
                                               init=lambda a: self._inside(a, X.shape[2:]))
            in_x = [None if inside is None else tap(inside, i, j, out_hw, self.stride) for i, j in offsets]
            Y = taps[-1].copy() if out is None else into(out, taps[-1])  # S_{T-1}
            won_all = work(self, "won", (len(taps), *Y.shape), bool)
            won_all[-1] = True  # c_{T-1}: S_T = -inf
            nan = work(self, "nan", Y.shape, bool)
            for x, c, x_in_X in zip(taps[-2::-1], won_all[-2::-1], in_x[-2::-1]):
                xp.logical_not(xp.less(x, Y, out=c), out=c)
                xp.greater(c, xp.isnan(Y, out=nan), out=c)  # c and not nan
                if x_in_X is not None:
                    c &= x_in_X  # padding never wins
                xp.maximum(Y, x, out=Y)
            if len(taps) > 1:  # the first t with c_t wins; c_{T-1} takes what is left (no window if padding)
                free = xp.logical_not(won_all[0], out=nan)
                for won in won_all[1:-1]:
                    won &= free
                    free ^= won
                won_all[-1] = free
        except FAILURES as exc:  # a bound plan's buffers that do not fit: said, not NumPy's words
            raise core_error(self, "forward", exc, X=X, out=out) from None
        self.X, self.won = X, won_all
        return Y

    def _inside(self, mask, hw):
        """``mask`` (1, 1, Hp, Wp) True on X (of height and width ``hw``) and False on its padding."""
        (H, W), (ph, pw) = hw, self.padding
        mask.fill(False)
        mask[:, :, ph:ph + H, pw:pw + W] = True

    def backward(self, dY, out=None):
        """dX, written into ``out`` when given (not dY's memory: the gradient is zeroed first, a 1x1 pool's
        into out itself); dY and out checked first."""
        self._check_backward(dY, out)
        self._own_buffer(out, "backward", dY=dY)
        return self._backward(dY, out)

    def _backward(self, dY, out=None):
        xp, (kh, kw), (sh, sw) = self.backend.xp, self.kernel_size, self.stride
        try:
            dXp = self._gradient_buffer(dY, out)
            disjoint = sh >= kh and sw >= kw  # then each input element is in at most one window
            share = None if disjoint else work(self, "share", dY.shape, dY.dtype)
            for t, won in enumerate(self.won):
                entry = tap(dXp, t // kw, t % kw, dY.shape[2:], self.stride)
                if disjoint:
                    xp.multiply(dY, won, out=entry)
                else:
                    entry += xp.multiply(dY, won, out=share)
            return self._unpadded(dXp, out)
        except FAILURES as exc:
            raise core_error(self, "backward", exc, dY=dY, out=out) from None

    def _clear_cache(self):
        super()._clear_cache()
        self.won = None


class AvgPool2D(_Pool2D):
    """Y[n, c, oh, ow] = (1 / d[oh, ow]) sum_{i,j} Xp[n, c, oh*sh + i, ow*sw + j]  (PyTorch's AvgPool2d),
    Xp: X padded with zeros.

    The divisor d is ``divisor_override`` when given, else the number of window entries that
    count, the window sums of an indicator M: d[oh, ow] = sum_{i,j} M[oh*sh + i, ow*sw + j], M = 1
    on the padded input (``count_include_pad=True``: padding counts, ceil mode's overhang past
    it does not) or on X alone (False), 0 elsewhere; d = kh kw when every window lies in M (no
    padding, floor mode). Every window entry gets its share of dY::

        dX = col2im(dY / d broadcast over the window), without the padding

    The sum comes first and the division after, as in PyTorch (float32 sums there too): a float32
    window summing past float32's largest value (3.4e38) gives inf in both.
    """

    count_include_pad, divisor_override = _checks.Fixed(), _checks.Fixed()

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None, backend=None, **options):
        super().__init__(kernel_size, stride, padding, ceil_mode, backend, options)
        self.count_include_pad = _checks.flag("AvgPool2D count_include_pad", count_include_pad)
        self.divisor_override = (None if divisor_override is None else
                                 _checks.integer("AvgPool2D divisor_override", divisor_override, minimum=1))

    def _options(self) -> dict:
        return {**super()._options(), **({} if self.count_include_pad else {"count_include_pad": False}),
                **({} if self.divisor_override is None else {"divisor_override": self.divisor_override})}

    def _divisor(self, shape, dtype):
        """d: ``divisor_override``, else kh kw where every window lies in M, else M's window sums (OH, OW)."""
        if self.divisor_override is not None:
            return self.divisor_override
        xp, (kh, kw), (H, W), (ph, pw) = self.backend.xp, self.kernel_size, shape[2:], self.padding
        size = self._geometry(shape)[1]
        inner, at = ((H + 2 * ph, W + 2 * pw), (0, 0)) if self.count_include_pad else ((H, W), (ph, pw))
        if inner == size:
            return kh * kw

        def window_sums(d):  # made once per input shape
            M = padded(xp, xp.ones((1, 1, *inner), dtype=dtype), at, size)
            windows(xp, M, self.kernel_size, self.stride).sum(axis=(4, 5), out=d[None, None])
        return work(self, ("divisor", H, W), self._geometry(shape)[0], dtype, init=window_sums)

    def _forward(self, X, out=None):
        xp = self.backend.xp
        try:
            Xp = self._padded(X, 0)[1]
            Y = windows(xp, Xp, self.kernel_size, self.stride).sum(axis=(4, 5), out=out)  # out None: a new Y
            Y /= self._divisor(X.shape, X.dtype)
        except FAILURES as exc:  # a bound plan's buffers that do not fit: said, not NumPy's words
            raise core_error(self, "forward", exc, X=X, out=out) from None
        self.X = X
        return Y

    def _backward(self, dY, out=None):
        xp, (kh, kw) = self.backend.xp, self.kernel_size
        try:
            (N, C, OH, OW), dXp = dY.shape, self._gradient_buffer(dY, out, zeroed=False)  # col2im zeroes it
            share = xp.divide(dY, self._divisor(self.X.shape, dY.dtype), out=work(self, "share", dY.shape, dY.dtype))
            dwin = xp.broadcast_to(share[:, :, None, None], (N, C, kh, kw, OH, OW))
            return self._unpadded(col2im(xp, dwin, dXp.shape, self.stride, out=dXp), out)
        except FAILURES as exc:
            raise core_error(self, "backward", exc, dY=dY, out=out) from None
