"""Batch normalisation over the batch (and, for images, the spatial) axes, per feature/channel.

Non-trainable state, the running mean and variance (and, for PyTorch's cumulative average, the
count of batches averaged), lives in ``layer.buffers`` beside ``params`` (which only an optimizer
updates): it changes in training forwards only and is what a checkpoint must save with the
parameters.
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

TORCH_OPTIONS = {"device": DEVICE_OPTION, "dtype": DEVICE_OPTION}  # PyTorch's, taken at their defaults only
STATISTICS = ("running_mean", "running_var")
COUNT = "num_batches_tracked"  # PyTorch's name; kept (int64, on the device) only for momentum=None


class BatchNorm(Layer):
    """Y = gamma x_hat + beta, x_hat = (X - mu) / sigma, sigma = sqrt(var + eps), per channel c
    (PyTorch's BatchNorm1d for (N, C), BatchNorm2d for (N, C, H, W), and its arguments).

    Batch statistics: mu and var are the batch mean and *biased* variance over the m = N (H W)
    values of each channel. They are used in training, and in eval too with
    ``track_running_stats=False`` (no running estimates are kept then; eval takes one value per
    channel, x_hat = 0, which PyTorch refuses: fit probes a model with one sample). Otherwise each
    training batch moves the running estimates by PyTorch's rule, and eval normalises by them::

        running_mean = (1 - k) running_mean + k mu
        running_var  = (1 - k) running_var  + k var m / (m - 1)      (unbiased)

    with k = momentum, or with ``momentum=None`` k = 1 / n, n = ``num_batches_tracked`` counting
    this batch: the running estimates are then the plain average of every batch's statistics
    (running + (stat - running) / n). A batch whose statistics are not finite leaves the
    estimates as they were and is not counted, so they stay the average of the batches that were.

    Backward, sums over N, H, W (gamma = 1 with ``affine=False``: no gamma, no beta, no params)::

        dbeta = sum dY      dgamma = sum dY x_hat
        dX = (1/m) gamma / sigma (m dY - dbeta - x_hat dgamma)      (batch statistics)
        dX = gamma / sigma dY                                        (running estimates)

    gamma starts at ones, beta at zeros; running_mean at zeros, running_var at ones, the count at 0.
    PyTorch's device and dtype are taken by keyword at their defaults only (``TORCH_OPTIONS``).
    gpubp keeps the count only where it is used (momentum=None; PyTorch counts always).
    """

    num_features = _checks.Fixed()  # the parameters' shape: set once
    affine = _checks.Fixed()
    track_running_stats = _checks.Fixed()
    eps = _checks.Checked(_checks.number, low=0, low_open=True)  # set later too: checked

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, *unsupported,
                 backend=None, **options):
        super().__init__(backend)
        torch_options("BatchNorm", options, TORCH_OPTIONS)
        if unsupported:  # PyTorch's device and dtype, once taken for a backend
            raise InvalidValueError(f"BatchNorm takes num_features, eps, momentum, affine and track_running_stats "
                                    f"by position, got more arguments {unsupported!r:.60}; pass backend= by keyword")
        self.num_features = _checks.integer("BatchNorm num_features", num_features, minimum=1)
        self.affine = bool(_checks.flag("BatchNorm affine", affine))
        self.track_running_stats = bool(_checks.flag("BatchNorm track_running_stats", track_running_stats))
        self.eps, self.momentum = eps, momentum
        addressable(f"BatchNorm({num_features}) gamma", (self.num_features,), self.backend.dtype.itemsize)
        self.seed, self._params = None, (None if self.affine else {})  # None: drawn on first use
        C, xp = self.num_features, self.backend.xp
        running = {"running_mean": self.backend.zeros((C,)), "running_var": xp.ones((C,), dtype=self.backend.dtype)}
        if momentum is None:
            running[COUNT] = self.backend.zeros((), dtype=np.int64)
        self.keep_buffers(running if self.track_running_stats else {})
        self.X = self.x_hat = self.inv_sigma = None
        self.batch_stats = True  # whether the last forward normalised by batch statistics

    @property
    def momentum(self):
        """Each batch's weight k in the running estimates, or None: their cumulative average."""
        return self._momentum

    @momentum.setter
    def momentum(self, value):
        """A number in [0, 1], checked whenever it is set; None (or not) is fixed when the layer is made."""
        if value is not None:
            value = _checks.number("BatchNorm momentum", value, low=0, high=1)
        if "_momentum" in self.__dict__ and (value is None) != (self._momentum is None):
            raise InvalidValueError(f"BatchNorm momentum=None (the cumulative average, counting the batches in "
                                    f"num_batches_tracked) is chosen when the layer is made: {self!r} cannot take "
                                    f"momentum={value!r}; make a new BatchNorm")
        self._momentum = value

    def __repr__(self):
        momentum = "None" if self.momentum is None else f"{self.momentum:g}"
        extra = ("" if self.affine else ", affine=False") + ("" if self.track_running_stats else
                                                             ", track_running_stats=False")
        return f"BatchNorm({self.num_features}, eps={self.eps:g}, momentum={momentum}{extra})"

    def config(self):
        """num_features, eps and momentum, and affine and track_running_stats where False (a config
        without them, as older checkpoints hold, is PyTorch's default True)."""
        options = {k: False for k in ("affine", "track_running_stats") if not getattr(self, k)}
        return {"type": "BatchNorm", "num_features": self.num_features, "eps": self.eps,
                "momentum": self.momentum, **options}

    def parameter_shapes(self):
        return {"gamma": (self.num_features,), "beta": (self.num_features,)} if self.affine else {}

    def drawn_parameters(self, rng, prefix=""):
        """gamma = 1, beta = 0 (``rng`` is not drawn from; none with affine=False); nothing set
        (``Layer.drawn_arrays``)."""
        if not self.affine:
            return {}
        C = self.num_features
        with self.backend.activate():
            return {"gamma": self.backend.xp.ones((C,), dtype=self.backend.dtype), "beta": self.backend.zeros((C,))}

    def output_shape(self, shape):
        """``shape`` itself when it is (N, C) or (N, C, H, W) with C = num_features and, in
        training, more than one value per channel (a variance of one value is 0); else a ShapeError.
        Eval without running statistics takes one value (x_hat = 0, Y = beta; PyTorch refuses it):
        fit probes a model with one sample in eval."""
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
        xp, self.batch_stats = self.backend.xp, self.training or not self.track_running_stats
        if self.batch_stats:  # statistics in float64: var of float32 values past 1.8e19 is finite there
            mu = X.mean(axis=axes, dtype=np.float64)
            d = X - mu.reshape(shape)  # float64 deviations, as NumPy's var forms them (CuPy's var squares in X's dtype)
            var = xp.multiply(d, d, out=d).mean(axis=axes)
            self.inv_sigma = (1 / xp.sqrt(var + self.eps)).astype(X.dtype)  # 1 / sigma, per channel
            with np.errstate(over="ignore"):  # a var past the dtype's range: Inf, so the estimates stay as they were
                mu, var = mu.astype(X.dtype), var.astype(X.dtype)
            if self.training and self.track_running_stats:
                self._update_running(mu, var, X.size // self.num_features)
        else:
            mu, var = self.buffers["running_mean"], self.buffers["running_var"]
            self.inv_sigma = 1 / xp.sqrt(var + self.eps)
        self.x_hat = (X - mu.reshape(shape)) * self.inv_sigma.reshape(shape)
        self.X = X
        if not self.affine:
            return self.x_hat
        return self.x_hat * self.params["gamma"].reshape(shape) + self.params["beta"].reshape(shape)

    def _update_running(self, mu, var, m):
        """PyTorch's rule, in place (the buffers stay the same arrays): unbiased var for the estimate.

        A batch whose mean or variance is not finite (NaN/Inf in X, or a variance past the
        dtype's range: float32 values spread over more than about 1.8e19) leaves both estimates
        as they were, and the count too: its output already shows the NaN, and the statistics of
        every batch before it, what eval uses, are not lost (PyTorch would keep NaN in them for
        good). Decided on the device, k = 1 / n too: no host sync."""
        xp = self.backend.xp
        rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
        finite = xp.isfinite(mu).all() & xp.isfinite(var).all()  # a 0-d bool array
        if self.momentum is None:  # k = 1 / n, in float64 on the device, rounded once to the dtype
            n = self.buffers[COUNT]
            n += finite
            k = 1 / xp.maximum(n, 1)  # n = 0 only while no batch was finite: nothing is written then
            k, keep, k_var = (a.astype(rm.dtype) for a in (k, 1 - k, k * m / (m - 1)))
        else:  # the scalars in float64 on the host, rounded once
            k = self.momentum
            keep, k_var = 1 - k, k * m / (m - 1)
        xp.copyto(rm, keep * rm + k * mu, where=finite)
        xp.copyto(rv, keep * rv + k_var * var, where=finite)

    def backward(self, dY):
        self._check_dY(dY, () if self.X is None else self.X.shape)
        axes, shape = _axes(dY)
        dbeta, dgamma = dY.sum(axis=axes), (dY * self.x_hat).sum(axis=axes)
        scale = self.inv_sigma.reshape(shape)  # gamma / sigma, gamma = 1 without affine
        if self.affine:
            self._accumulate("gamma", lambda out: into(out, dgamma))
            self._accumulate("beta", lambda out: into(out, dbeta))
            self._grads_zero = self._grads_stale = False
            scale = self.params["gamma"].reshape(shape) * scale
        if not self.batch_stats:
            return dY * scale
        m = dY.size // self.num_features
        return (scale / m) * (m * dY - dbeta.reshape(shape) - self.x_hat * dgamma.reshape(shape))

    def checked_buffers(self, arrays: dict) -> dict:
        """running_mean, running_var and num_batches_tracked (those the layer keeps) from ``{name:
        array}`` (any device), every name, shape and value checked: finite statistics, a variance
        never negative (its square root is taken in eval), a count a 0-d integer array >= 0."""
        shapes = {name: buf.shape for name, buf in self.buffers.items()}
        if not isinstance(arrays, dict) or set(arrays) != set(shapes):
            return self._checked_arrays("buffer", arrays, shapes)  # the error naming the buffers
        stats = {k: arrays[k] for k in STATISTICS if k in shapes}
        checked = self._checked_arrays("buffer", stats, {k: shapes[k] for k in stats})
        for name, a in checked.items():
            self.backend.check_finite(a, f"{self!r} buffer {name}")
        if stats and bool((checked["running_var"] < 0).any()):
            raise InvalidValueError(f"{self!r} buffer running_var must be >= 0 (a variance), got a negative value")
        if COUNT in shapes:
            checked[COUNT] = self._checked_count(self.backend, arrays[COUNT])
        return checked

    def _checked_count(self, backend, value):
        """``value`` (an integer array of shape (), any device; a Python int) as an int64 on ``backend``."""
        n = np.asarray(self.backend.to_numpy(value))
        if n.shape != () or n.dtype.kind not in "iu" or not 0 <= n <= np.iinfo(np.int64).max:
            raise InvalidValueError(f"{self!r} buffer {COUNT} is a count, a 0-d integer array >= 0, got "
                                    f"{n.dtype} of shape {n.shape}" + (f": {n}" if n.shape == () else ""))
        return backend.asarray(n, np.int64)

    def moved_arrays(self, backend, prefix=""):
        """As ``Layer.moved_arrays``, with the count (int64, not of the layer's dtype) moved too."""
        arrays = super().moved_arrays(backend, prefix)
        if COUNT in self.buffers:
            arrays["buffer"][COUNT] = self._checked_count(backend, self.buffers[COUNT])
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
