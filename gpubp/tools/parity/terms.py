"""The size of the terms each quantity a layer computes is a sum of, which parity judges its
rounding against: near a minimum a gradient shrinks, and a bias before BatchNorm has a true
gradient of 0, while the rounding of the terms that cancel there does not shrink.

Forward, the output Y::

    Dense:      |X| |W| + |b|
    Conv2D:     |W_col| |cols_n| + |b|                      (cols = im2col(X))
    BatchNorm:  (|X| + |mu|) |gamma| / sigma + |beta|         (gamma = 1, beta = 0 with affine=False)

Backward, from S, the elementwise size of dY's terms::

    Dense:      dX = S |W|^T                 dW = |X|^T S                  db = sum_n S
    Conv2D:     dX = col2im(|W_col|^T S_n)   dW = sum_n S_n |cols_n|^T     db = sum_{n,p} S
    BatchNorm:  dX = |gamma| / sigma (S + mean S + |x_hat| mean(S |x_hat|))   (batch statistics;
                |gamma| / sigma S with running ones)   dgamma = sum S |x_hat|   dbeta = sum S
    f' applied elementwise (no parameters): dX = S times f''s own term size
                (``derivative_terms``: 1 + Y^2 for tanh, where |f'| = 1 - Y^2 is far smaller than
                its rounding once the unit saturates), else |backward(S)|

A layer of another kind has no entry: parity then judges a quantity against its own size.
"""
from __future__ import annotations

from ...nn import BatchNorm, Conv2D, Dense
from ...nn.windows import col2im


def output_terms(layer):
    """The largest term size of the layer's last forward output, or None when unknown."""
    xp, X = layer.backend.xp, getattr(layer, "X", None)
    if X is None:
        return None
    if isinstance(layer, Dense):
        return (xp.matmul(xp.abs(X), xp.abs(layer.params["W"])) + _abs_bias(layer, xp)).max()
    if isinstance(layer, Conv2D):
        W_col = xp.abs(layer.params["W"].reshape(layer.out_channels, -1))
        return (xp.matmul(W_col, xp.abs(layer.cols)).max(axis=(0, 2)) + _abs_bias(layer, xp)).max()
    if isinstance(layer, BatchNorm):
        axes, shape = _channel_axes(X)
        mu = X.mean(axis=axes) if layer.batch_stats else layer.buffers["running_mean"]
        gamma, beta = _affine(layer, xp)
        return (((xp.abs(X) + xp.abs(mu).reshape(shape)) * (layer.inv_sigma * gamma).reshape(shape)).max(axis=axes)
                + beta).max()
    return None


def gradient_terms(layer, size) -> dict:
    """``{"dX": ..., "dW": ..., ...}``: the elementwise term sizes of the layer's gradients, from
    ``size``, that of dY's terms; an entry is missing where unknown."""
    xp, X = layer.backend.xp, getattr(layer, "X", None)
    if not layer.params and not isinstance(layer, BatchNorm):  # BatchNorm(affine=False) has none either
        terms = getattr(layer, "derivative_terms", lambda: None)()
        dX = size * terms if terms is not None else layer.backward(size)
        return {"dX": xp.abs(dX)} if dX.shape == size.shape else {}
    if X is None:
        return {}
    if isinstance(layer, Dense):
        W = xp.abs(layer.params["W"])
        return {"dX": xp.matmul(size, W.T), "dW": xp.matmul(xp.abs(X).T, size), "db": size.sum(axis=0)}
    if isinstance(layer, Conv2D):
        N, O, OH, OW = size.shape
        S, W_col = size.reshape(N, O, OH * OW), xp.abs(layer.params["W"].reshape(O, -1))
        dW = xp.matmul(S, xp.abs(layer.cols).transpose(0, 2, 1)).sum(axis=0).reshape(layer.params["W"].shape)
        dwin = xp.matmul(W_col.T, S).reshape(N, layer.in_channels, *layer.kernel_size, OH, OW)
        return {"dX": col2im(xp, dwin, X.shape, layer.stride, layer.padding), "dW": dW, "db": S.sum(axis=(0, 2))}
    if isinstance(layer, BatchNorm):
        axes, shape = _channel_axes(X)
        x_hat, scale = xp.abs(layer.x_hat), (_affine(layer, xp)[0] * layer.inv_sigma).reshape(shape)
        dX = size + size.mean(axis=axes, keepdims=True) + x_hat * (size * x_hat).mean(axis=axes, keepdims=True) \
            if layer.batch_stats else size
        params = {"dgamma": (size * x_hat).sum(axis=axes), "dbeta": size.sum(axis=axes)} if layer.params else {}
        return {"dX": scale * dX, **params}
    return {}


def _abs_bias(layer, xp):
    """|b|, or 0 for a layer built without a bias."""
    b = layer.params.get("b")
    return 0 if b is None else xp.abs(b)


def _affine(layer, xp):
    """BatchNorm's |gamma| and |beta|, or 1 and 0 for one built with affine=False."""
    if not layer.params:
        return 1, 0
    return xp.abs(layer.params["gamma"]), xp.abs(layer.params["beta"])


def _channel_axes(X):
    """BatchNorm's reduction axes for (N, C) or (N, C, H, W), and the shape a per-channel array takes."""
    return ((0,), (1, -1)) if X.ndim == 2 else ((0, 2, 3), (1, -1, 1, 1))
