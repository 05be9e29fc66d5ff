"""Sliding windows over NCHW images, what convolution and pooling share.

A window of a padded input ``Xp`` (N, C, Hp, Wp) at output position (oh, ow) is
``Xp[n, c, oh*sh + i, ow*sw + j]`` for kernel offsets (i, j). ``windows`` exposes all of
them as a strided view (N, C, OH, OW, kh, kw) with OH = (Hp - kh) // sh + 1 (floor mode,
as PyTorch; ``output_size`` also knows the pools' ceil mode, whose last window may reach
past the padded input: ``padded`` makes room for it); ``tap(Xp, i, j, ...)`` is one kernel
offset's entries of every window, a strided (N, C, OH, OW) view; ``col2im`` is the adjoint
of ``windows``: every window entry's gradient is added back to the input element it was
read from (one ``tap`` per kernel offset, so kh*kw vectorised additions whatever the stride
and padding). All work on NumPy and CuPy.
"""
from __future__ import annotations

import numbers
import operator

import numpy as np

from ..backend.operands import operand_error
from ..errors import GpubpError, InvalidValueError, ShapeError

_FAILURES = (TypeError, ValueError, IndexError, AttributeError, KeyError)


def pair(value, what, minimum=1):
    """``value`` as an (h, w) pair of ints >= ``minimum`` (an int means both), else a clear error."""
    if isinstance(minimum, bool) or not isinstance(minimum, int):
        raise InvalidValueError(f"pair: minimum must be a whole number, got {minimum!r:.60}")
    items = value if isinstance(value, (tuple, list)) else (value, value)
    try:
        if isinstance(value, bool) or len(items) != 2 or any(isinstance(v, bool) for v in items):
            raise TypeError
        h, w = (operator.index(v) for v in items)
    except TypeError:
        raise InvalidValueError(f"{what} must be an int or a pair of ints, got {value!r}") from None
    if h < minimum or w < minimum:
        raise InvalidValueError(f"{what} must be >= {minimum}, got {value!r}")
    return h, w


def same_padding(padding, kernel, stride, what):
    """``padding`` as Conv2D takes it: PyTorch's "valid" (none) and "same" (Y as large as X: (k - 1) / 2 on
    each side, stride 1 and odd kernels only), else ``pair(padding, what, minimum=0)``."""
    if not isinstance(padding, str):
        return pair(padding, what, minimum=0)
    if padding == "valid":
        return 0, 0
    if padding != "same":
        raise InvalidValueError(f"{what} must be an int, a pair of ints, 'valid' or 'same', got {padding!r:.40}")
    if tuple(stride) != (1, 1):
        raise InvalidValueError(f"{what}='same' needs stride 1 (as in PyTorch), got stride {tuple(stride)}")
    if not all(k % 2 for k in kernel):
        raise InvalidValueError(f"{what}='same' with the even kernel size {tuple(kernel)} pads one side more than "
                                f"the other (PyTorch does), which gpubp's padding cannot: give padding=(ph, pw)")
    return (kernel[0] - 1) // 2, (kernel[1] - 1) // 2


DEVICE_OPTION = ((None,), "give backend= (a device and dtype, e.g. 'cuda:0/float64') in place of PyTorch's "
                          "device and dtype")  # PyTorch's device= and dtype=, in torch_options' terms


def torch_options(layer, given, supported):
    """Check a layer's extra keyword arguments ``given`` ({name: value}): those of PyTorch's
    layer that gpubp's does not implement, ``supported`` = {name: (values meaning what gpubp does,
    what it does)}. At such a value (PyTorch's default) one is accepted, so ported code runs as
    it is; another value, or a name not in ``supported``, is an InvalidValueError naming it."""
    for name, value in given.items():
        if name not in supported:
            also = f" (besides its own, it takes PyTorch's {', '.join(supported)} at their default values only)"
            raise InvalidValueError(f"{layer} got an unexpected keyword argument {name!r}{also if supported else ''}")
        accepted, meaning = supported[name]
        if not any(_same(value, a) for a in accepted):
            raise InvalidValueError(f"{layer} does not support {name}={value!r:.40}: {meaning}")


def _same(value, accepted) -> bool:
    """Whether ``value`` is ``accepted`` (an int, bool, str, None or tuple of them), bools never taken for ints."""
    if isinstance(accepted, tuple):
        return (isinstance(value, (tuple, list)) and len(value) == len(accepted)
                and all(_same(v, a) for v, a in zip(value, accepted)))
    if isinstance(accepted, bool) or isinstance(value, bool):
        return type(value) is type(accepted) and value == accepted
    if isinstance(accepted, int):
        return isinstance(value, numbers.Integral) and value == accepted
    return type(value) is type(accepted) and value == accepted


def output_size(layer, shape, kernel, stride, padding=(0, 0), ceil_mode=False):
    """(OH, OW) of ``layer`` sliding ``kernel`` over an input of ``shape`` (N, C, H, W) padded by
    ``padding`` on each side (Hp = H + 2 ph): floor mode OH = (Hp - kh) // sh + 1, or PyTorch's
    ceil mode OH = ceil((Hp - kh) / sh) + 1, less one when that last window would start at or
    past H + ph (in the bottom padding or beyond: every window must hold some of the input or
    its top padding); the same across. A ShapeError naming the layer when the input is not
    4-d or no window fits."""
    try:
        if len(shape) != 4:
            raise ShapeError(f"{layer!r} expects NCHW (4-d) inputs, got shape {tuple(shape)}")
        (H, W), (kh, kw), (sh, sw) = shape[2:], kernel, stride
        Hp, Wp = H + 2 * padding[0], W + 2 * padding[1]
        if not ceil_mode:
            if kh > Hp or kw > Wp:
                raise ShapeError(f"{layer!r}: the {kh}x{kw} window is larger than the padded input {Hp}x{Wp} "
                                 f"(input shape {tuple(shape)}, padding {tuple(padding)})")
            return (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
        OH, OW = (_ceil_size(n, p, k, s) for n, p, k, s in ((H, padding[0], kh, sh), (W, padding[1], kw, sw)))
        if OH < 1 or OW < 1:
            raise ShapeError(f"{layer!r}: the {kh}x{kw} window with stride {tuple(stride)} leaves no output of the "
                             f"padded input {Hp}x{Wp}, even in ceil mode (input shape {tuple(shape)}, padding "
                             f"{tuple(padding)})")
        return OH, OW
    except _FAILURES + (ZeroDivisionError,) as exc:
        if isinstance(exc, GpubpError):
            raise
        raise ShapeError(f"{layer!r}: cannot slide a window {kernel!r:.30} with stride {stride!r:.30} and padding "
                         f"{padding!r:.30} over an input of shape {shape!r:.80}: an input shape is 4 whole numbers "
                         f"(NCHW), the window, stride and padding pairs of them ({exc})") from None


def _ceil_size(n, p, k, s):
    """Ceil mode's number of windows along one axis (PyTorch's pooling_output_shape): ceil((n + 2p - k) / s) + 1,
    less the last when it would start at or past n + p."""
    size = (n + 2 * p - k + s - 1) // s + 1  # // rounds down, as PyTorch's div_rtn
    return size - 1 if (size - 1) * s >= n + p else size


def padded(xp, X, padding, size, value=0):
    """A new (N, C, *size) array of ``value`` holding X (N, C, H, W) at offset ``padding`` (ph, pw): X
    padded by ph, pw at the top and left, and at the bottom and right as far as ``size`` reaches (at
    least ph, pw more; ceil mode's last window may need more)."""
    try:
        (N, C, H, W), (ph, pw) = X.shape, padding
        Xp = xp.full((N, C, *size), value, dtype=X.dtype)
        Xp[:, :, ph:ph + H, pw:pw + W] = X
        return Xp
    except _FAILURES as exc:
        raise _error(f"padded (padding {padding!r:.30}, size {size!r:.30})", exc, X=X) from None


def placed(Xp, X, padding):
    """``Xp`` (N, C, Hp, Wp) with X (N, C, H, W) written at offset ``padding`` (ph, pw): a work array made
    once, its padding left as it was made (``padded``'s, without a new array)."""
    try:
        (H, W), (ph, pw) = X.shape[2:], padding
        Xp[:, :, ph:ph + H, pw:pw + W] = X
        return Xp
    except _FAILURES as exc:
        raise _error(f"placed (padding {padding!r:.30})", exc, Xp=Xp, X=X) from None


def windows(xp, X, kernel, stride, padding=(0, 0)):
    """Read-only strided view (N, C, OH, OW, kh, kw) of the windows of X zero-padded by ``padding``:
    strides (s_N, s_C, sh s_H, sw s_W, s_H, s_W) over X's own memory. Made with ``as_strided``: CuPy's
    ``sliding_window_view`` copies the window shape to the device, an allocation that a captured
    CUDA graph refuses (seen on an H200)."""
    try:
        (ph, pw), (sh, sw), (kh, kw) = padding, stride, kernel
        if ph or pw:
            X = xp.pad(X, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        (N, C, H, W), (sN, sC, sH, sW) = X.shape, X.strides
        OH, OW = (H - kh) // sh + 1, (W - kw) // sw + 1
        if min(kh, kw, sh, sw, OH, OW) < 1:
            raise ValueError(f"no {kh}x{kw} window with stride ({sh}, {sw}) fits in {H}x{W}")
        view = xp.lib.stride_tricks.as_strided(X, (N, C, OH, OW, kh, kw), (sN, sC, sH * sh, sW * sw, sH, sW))
        if isinstance(view, np.ndarray):  # NumPy's views are writeable; CuPy's have no such flag
            view.flags.writeable = False
        return view
    except _FAILURES as exc:
        raise _error(f"windows (kernel {kernel!r:.30}, stride {stride!r:.30}, padding {padding!r:.30})", exc, X=X) from None


def _error(what, exc, **arrays):
    """The error of ``what`` on ``arrays`` that failed with ``exc``: the arrays' shapes and dtypes named."""
    return operand_error(what, exc, rule="NCHW arrays and (h, w) pairs of whole numbers", **arrays)


def tap(Xp, i, j, out_hw, stride):
    """Entry (i, j) of every window: the strided view Xp[:, :, oh*sh + i, ow*sw + j] of shape (N, C, OH, OW)."""
    try:
        (OH, OW), (sh, sw) = out_hw, stride
        return Xp[:, :, i:i + sh * (OH - 1) + 1:sh, j:j + sw * (OW - 1) + 1:sw]
    except _FAILURES as exc:
        raise _error(f"tap ({i!r:.20}, {j!r:.20}) of {out_hw!r:.30} windows, stride {stride!r:.30}", exc, Xp=Xp) from None


def col2im(xp, dwin, shape, stride, padding=(0, 0), out=None, work=None):
    """dX (shape N, C, H, W) from window gradients ``dwin`` (N, C, kh, kw, OH, OW), the adjoint of
    ``windows``: dXp[n, c, oh*sh + i, ow*sw + j] += dwin[n, c, i, j, oh, ow], then the padding cut.
    Written into ``out`` when given; padded, the sums go into ``work`` (N, C, H + 2 ph, W + 2 pw) when
    given (a new array else), unpadded straight into ``out``: with both, nothing is allocated."""
    try:
        (N, C, H, W), (_, _, kh, kw, OH, OW) = shape, dwin.shape
        ph, pw = padding
        dXp = work if ph or pw else out
        if dXp is None:
            dXp = xp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=dwin.dtype)
        else:
            dXp.fill(0)
        for i in range(kh):
            for j in range(kw):
                entry = tap(dXp, i, j, (OH, OW), stride)
                xp.add(entry, dwin[:, :, i, j], out=entry)
        if not (ph or pw):
            return dXp
        inner = dXp[:, :, ph:ph + H, pw:pw + W]
        if out is None:
            return xp.ascontiguousarray(inner)
        out[...] = inner
        return out
    except _FAILURES as exc:
        raise _error(f"col2im to shape {shape!r:.40} (stride {stride!r:.30}, padding {padding!r:.30})", exc,
                     dwin=dwin) from None
