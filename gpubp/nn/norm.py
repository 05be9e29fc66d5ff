"""Batch normalisation over the batch (and, for images, the spatial) axes, per feature/channel.

Non-trainable state, the running mean and variance, lives in ``layer.buffers`` beside
``params`` (which only an optimizer updates): it changes in training forwards only and is
what a checkpoint must save with the parameters.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _checks
from ..errors import InvalidValueError, ShapeError
from ..initializers import addressable
from .arrays import FAILURES, into, shape_error
from .base import Layer
from .windows import DEVICE_OPTION, torch_options

TORCH_OPTIONS = {  # PyTorch's BatchNorm arguments taken by keyword at their defaults only: see torch_options
    "affine": ((True,), "gamma and beta are always learned (affine=True)"),
    "track_running_stats": ((True,), "the running statistics are always kept, and eval normalises by them "
                                     "(track_running_stats=True)"),
    "device": DEVICE_OPTION, "dtype": DEVICE_OPTION}


class BatchNorm(Layer):
    """Y = gamma x_hat + beta, x_hat = (X - mu) / sigma, sigma = sqrt(var + eps), per channel c
    (PyTorch's BatchNorm1d for (N, C), BatchNorm2d for (N, C, H, W)).

    Training: mu and var are the batch mean and *biased* variance over the m = N (H W) values
    of each channel, and the running estimates move by PyTorch's rule::

        running_mean = (1 - momentum) running_mean + momentum mu
        running_var  = (1 - momentum) running_var  + momentum var m / (m - 1)   (unbiased)

    Eval: mu, var are the running estimates (constants). Backward, sums over N, H, W::

        dbeta = sum dY      dgamma = sum dY x_hat
        dX = (1/m) gamma / sigma (m dY - dbeta - x_hat dgamma)      (training)
        dX = gamma / sigma dY                                        (eval)

    gamma starts at ones, beta at zeros; running_mean at zeros, running_var at ones.
    PyTorch's affine, track_running_stats, device and dtype are taken by keyword at their
    defaults only (``TORCH_OPTIONS``); momentum=None (its cumulative average) is refused.
    """

    num_features = _checks.Fixed()  # the parameters' shape: set once
    eps = _checks.Checked(_checks.number, low=0, low_open=True)  # set later too: checked
    momentum = _checks.Checked(_checks.number, low=0, high=1)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, *unsupported, backend=None, **options):
        super().__init__(backend)
        torch_options("BatchNorm", options, TORCH_OPTIONS)
        if unsupported:  # PyTorch's affine and track_running_stats, once taken for a device name
            raise InvalidValueError(f"BatchNorm takes num_features, eps and momentum, got more arguments "
                                    f"{unsupported!r:.60}: gamma and beta are always learned and the running "
                                    f"statistics always kept (PyTorch's affine, track_running_stats); "
                                    f"pass backend= by keyword")
        self.num_features = _checks.integer("BatchNorm num_features", num_features, minimum=1)
        if momentum is None:
            raise InvalidValueError("BatchNorm momentum=None (PyTorch's cumulative average of every batch's "
                                    "statistics) is not supported: give a number in [0, 1], e.g. PyTorch's default 0.1")
        self.eps, self.momentum = eps, momentum
        addressable(f"BatchNorm({num_features}) gamma", (self.num_features,), self.backend.dtype.itemsize)
        self.seed, self._params = None, None
        C = self.num_features
        self.keep_buffers({"running_mean": self.backend.zeros((C,)),
                           "running_var": self.backend.xp.ones((C,), dtype=self.backend.dtype)})
        self.X = self.x_hat = self.inv_sigma = None
        self.batch_stats = True  # whether the last forward normalised by batch statistics

    def __repr__(self):
        return f"BatchNorm({self.num_features}, eps={self.eps:g}, momentum={self.momentum:g})"

    def config(self):
        return {"type": "BatchNorm", "num_features": self.num_features, "eps": self.eps,
                "momentum": self.momentum}

    def parameter_shapes(self):
        return {"gamma": (self.num_features,), "beta": (self.num_features,)}

    def drawn_parameters(self, rng, prefix=""):
        """gamma = 1, beta = 0 (``rng`` is not drawn from); nothing set (``Layer.drawn_arrays``)."""
        C = self.num_features
        with self.backend.activate():
            return {"gamma": self.backend.xp.ones((C,), dtype=self.backend.dtype), "beta": self.backend.zeros((C,))}

    def output_shape(self, shape):
        """``shape`` itself when it is (N, C) or (N, C, H, W) with C = num_features and, in
        training, more than one value per channel (a variance of one value is 0); else a ShapeError."""
        try:
            if len(shape) not in (2, 4) or shape[1] != self.num_features:
                raise ShapeError(f"{self!r} expects inputs of shape (N, {self.num_features}) or "
                                 f"(N, {self.num_features}, H, W), got shape {tuple(shape)}")
            if self.training and math.prod(shape) // self.num_features < 2:
                raise ShapeError(f"{self!r} in training needs more than one value per channel, got input "
                                 f"shape {tuple(shape)} (use a larger batch, or eval mode)")
            return tuple(shape)
        except FAILURES as exc:
            raise shape_error(self, shape, exc) from None

    def forward(self, X):
        self.backend.check_array(X, "BatchNorm input")
        self.output_shape(X.shape)
        axes, shape = _axes(X)
        xp, gamma, beta = self.backend.xp, self.params["gamma"], self.params["beta"]
        if self.training:  # statistics in float64: var of float32 values past 1.8e19 is finite there
            mu = X.mean(axis=axes, dtype=np.float64)
            d = X - mu.reshape(shape)  # float64 deviations, as NumPy's var forms them (CuPy's var squares in X's dtype)
            var = xp.multiply(d, d, out=d).mean(axis=axes)
            self.inv_sigma = (1 / xp.sqrt(var + self.eps)).astype(X.dtype)  # 1 / sigma, per channel
            with np.errstate(over="ignore"):  # a var past the dtype's range: Inf, so the estimates stay as they were
                mu, var = mu.astype(X.dtype), var.astype(X.dtype)
            self._update_running(mu, var, X.size // self.num_features)
        else:
            mu, var = self.buffers["running_mean"], self.buffers["running_var"]
            self.inv_sigma = 1 / xp.sqrt(var + self.eps)
        self.x_hat = (X - mu.reshape(shape)) * self.inv_sigma.reshape(shape)
        self.X, self.batch_stats = X, self.training
        return self.x_hat * gamma.reshape(shape) + beta.reshape(shape)

    def _update_running(self, mu, var, m):
        """PyTorch's rule, in place (the buffers stay the same arrays): unbiased var for the estimate.

        A batch whose mean or variance is not finite (NaN/Inf in X, or a variance past the
        dtype's range: float32 values spread over more than about 1.8e19) leaves both estimates
        as they were: its output already shows the NaN, and the statistics of every batch
        before it, what eval uses, are not lost (PyTorch would keep
        NaN in them for good). Decided on the device: no host sync."""
        k, xp = self.momentum, self.backend.xp
        rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
        finite = xp.isfinite(mu).all() & xp.isfinite(var).all()  # a 0-d bool array
        xp.copyto(rm, (1 - k) * rm + k * mu, where=finite)
        xp.copyto(rv, (1 - k) * rv + (k * m / (m - 1)) * var, where=finite)  # the scalar in float64 on the host, rounded once

    def backward(self, dY):
        self._check_dY(dY, () if self.X is None else self.X.shape)
        axes, shape = _axes(dY)
        dbeta, dgamma = dY.sum(axis=axes), (dY * self.x_hat).sum(axis=axes)
        self._accumulate("gamma", lambda out: into(out, dgamma))
        self._accumulate("beta", lambda out: into(out, dbeta))
        self._grads_zero = self._grads_stale = False
        scale = (self.params["gamma"] * self.inv_sigma).reshape(shape)  # gamma / sigma
        if not self.batch_stats:
            return dY * scale
        m = dY.size // self.num_features
        return (scale / m) * (m * dY - dbeta.reshape(shape) - self.x_hat * dgamma.reshape(shape))

    def checked_buffers(self, arrays: dict) -> dict:
        """running_mean and running_var from ``{name: array}`` (any device), every name, shape and
        value checked: finite, and a variance never negative (its square root is taken in eval)."""
        arrays = super().checked_buffers(arrays)
        for name, a in arrays.items():
            self.backend.check_finite(a, f"{self!r} buffer {name}")
        if bool((arrays["running_var"] < 0).any()):
            raise InvalidValueError(f"{self!r} buffer running_var must be >= 0 (a variance), got a negative value")
        return arrays

    def bind(self, X, Y, dY, dX):
        """Refused: BatchNorm's forward and backward write no ``out`` buffer, so a step plan cannot bind them."""
        raise InvalidValueError(f"{self!r} cannot be bound to a step plan's buffers: its forward and backward "
                                f"take no out buffer; run it with forward and backward")

    def _clear_cache(self):
        self.X = self.x_hat = self.inv_sigma = None


def _axes(X):
    """The axes reduced per channel, and the shape a (C,) vector takes to broadcast against X."""
    if X.ndim == 2:
        return (0,), (1, X.shape[1])
    return (0, 2, 3), (1, X.shape[1], 1, 1)
