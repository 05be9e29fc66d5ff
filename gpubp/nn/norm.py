"""Batch normalisation over the batch (and, for images, the spatial) axes, per feature/channel.

Non-trainable state, the running mean and variance (and, for PyTorch's cumulative average, the
count of batches averaged), lives in ``layer.buffers`` beside ``params`` (which only an optimizer
updates): it changes in training forwards only and is what a checkpoint must save with the
parameters. Forward and backward take ``out=`` buffers and keep their work arrays per input shape,
so a model with BatchNorm runs in a step plan and a CUDA graph (gpubp/plan/).
"""
from __future__ import annotations

import functools

import numpy as np

from .. import _checks
from ..errors import InvalidValueError, ShapeError
from ..initializers import addressable
from .arrays import FAILURES, core_error, into, kept, shape_error
from . import running
from .batch_statistics import axes_of, work_arrays
from .base import Layer
from .norm_shares import SharedStatistics
from .running import RunningEstimates
from .windows import DEVICE_OPTION, torch_options

TORCH_OPTIONS = {"device": DEVICE_OPTION, "dtype": DEVICE_OPTION}  # PyTorch's, taken at their defaults only


class BatchNorm(SharedStatistics, RunningEstimates, Layer):
    """Y = gamma x_hat + beta, x_hat = (X - mu) / sigma, sigma = sqrt(var + eps), per channel c
    (PyTorch's BatchNorm1d for (N, C), BatchNorm2d for (N, C, H, W), and its arguments).

    Batch statistics: mu and var are the batch mean and *biased* variance over the m = N (H W)
    values of each channel. They are used in training, and in eval too with
    ``track_running_stats=False`` (no running estimates are kept then). Otherwise each
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

    Under data parallelism fit gives the layer, for each training step, its ``share`` of the global
    batch (``nn/share.py``): mu, var, m, dbeta and dgamma in the formulas above are then the global
    batch's, summed over the shares (sum X with the count m, then sum (X - mu)^2; in the backward
    dbeta and dgamma, after this share's own sums went to the gradients, which fit sums itself),
    so N processes normalise, update the running estimates and back-propagate as one process
    (``nn/norm_shares.py``, with the idle steps of a process that holds no sample).

    gamma starts at ones, beta at zeros; running_mean at zeros, running_var at ones, the count at 0.
    PyTorch's device and dtype are taken by keyword at their defaults only (``TORCH_OPTIONS``).
    gpubp keeps the count only where it is used (momentum=None; PyTorch counts always).

    ``forward(X, out=Y)`` and ``backward(dY, out=dX)`` write into buffers given (a step plan's:
    ``bind``); every other array a step writes is the layer's own, made once per input shape and
    written again at each step (``_work``: the float64 statistics and deviations, x_hat, 1 / sigma,
    the backward's sums and products), so a planned step allocates nothing, reads nothing to the
    host and calls no GEMM, and can be captured as a CUDA graph (``capturable``). The numbers are
    those of fresh arrays, bit for bit, for C-ordered inputs (what gpubp's layers and plans give;
    the work arrays are C-ordered, so another layout's sums run in another order: last-bit
    differences from arrays laid out as X). A captured graph holds eps and momentum as they were when
    it was recorded: setting another value counts as a change of the layer's arrays (``generation``),
    so the graph is recorded again before its next step.
    """

    num_features = _checks.Fixed()  # the parameters' shape: set once
    affine = _checks.Fixed()
    track_running_stats = _checks.Fixed()
    capturable = True  # a step writes into given buffers and its own work arrays: no allocation, host read or GEMM
    takes_share = True  # its statistics summed over the shares of a global batch (nn/share.py)

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
        self._keep_estimates(momentum is None)
        self.X = self.x_hat = self.inv_sigma = None
        self.batch_stats = True  # whether the last forward normalised by batch statistics
        self.values = 0  # the values per channel its statistics were over (the global batch's under a share)
        self.share = None  # this process's share of a global batch (nn/share.py), set by fit for a step

    @property
    def eps(self):
        """Added to the variance under the square root: a number > 0, checked whenever it is set."""
        return self._eps

    @eps.setter
    def eps(self, value):
        self._eps = self._recorded("_eps", _checks.number(f"{type(self).__name__} eps", value, low=0, low_open=True))

    def _recorded(self, name, value):
        """``value``, the new eps or momentum: a CUDA graph recorded with the old one holds it, so a
        change counts as a replaced parameter array does (``generation``): the graph is recorded again."""
        if name in self.__dict__ and self.__dict__[name] != value:
            self.generation += 1
        return value

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
        self._momentum = self._recorded("_momentum", value)

    def __repr__(self):
        momentum = "None" if self.momentum is None else f"{self.momentum:g}"
        extra = ("" if self.affine else ", affine=False") + ("" if self.track_running_stats else
                                                             ", track_running_stats=False")
        return f"BatchNorm({self.num_features}, eps={self.eps:g}, momentum={momentum}{extra})"

    def config(self):
        """num_features, eps and momentum, and affine and track_running_stats where False (a config
        without them, as older checkpoints hold, is PyTorch's default True)."""
        options = {k: False for k in ("affine", "track_running_stats") if not getattr(self, k)}
        return {"type": type(self).__name__, "num_features": self.num_features, "eps": self.eps,
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

    def output_form(self, form):
        """``form`` itself for (N, C) or (N, C, H, W) with C = num_features (``Layer.output_form``)."""
        ndim, channels = form
        if ndim not in (None, 2, 4) or channels not in (None, self.num_features):
            raise ShapeError(f"expects inputs (N, {self.num_features}) or (N, {self.num_features}, H, W)")
        return ndim, self.num_features

    def output_shape(self, shape):
        """``shape`` itself when it is (N, C) or (N, C, H, W) with C = num_features and, where batch
        statistics are used (training; eval too without running statistics), more than one value per
        channel (one value's x_hat is 0, whatever it is: Y = beta); else a ShapeError, as PyTorch's."""
        try:
            if len(shape) not in (2, 4) or shape[1] != self.num_features:
                raise ShapeError(f"{self!r} expects inputs of shape (N, {self.num_features}) or "
                                 f"(N, {self.num_features}, H, W), got shape {tuple(shape)}")
            if (self.training or not self.track_running_stats) and self._values(shape) < 2:
                when = "in training" if self.training else "without running statistics (in eval too)"
                cure = "use a larger batch, or eval mode" if self.track_running_stats else "use a larger batch"
                raise ShapeError(f"{self!r} {when} normalises by the batch's statistics and needs more than "
                                 f"one value per channel, got input shape {tuple(shape)} ({cure})")
            return tuple(shape)
        except FAILURES as exc:
            raise shape_error(self, shape, exc) from None

    def forward(self, X, out=None):
        """Y, written into ``out`` when given (a step plan's buffer of X's shape; X itself may be it:
        X is read whole before Y is written); X and out checked first."""
        self._check_forward(X, out)
        return self._forward(X, out)

    def _forward(self, X, out=None, work=None):
        """The forward's core: every array it writes is ``out`` (a new Y without it), the running
        statistics, or the layer's work arrays for X's shape (``work``: those a step plan bound)."""
        xp = self.backend.xp
        try:
            _fits(X, out)
            work = work or self._work(X.shape, X.dtype)
            axes, shape = axes_of(X)
            self.batch_stats = self.training or not self.track_running_stats
            if self.batch_stats:
                mu, var = self._batch_statistics(X, work, axes, shape)
            else:  # 1 / sigma = 1 / sqrt(running_var + eps), in X's dtype
                mu, var, inv = self.buffers["running_mean"], self.buffers["running_var"], work.inv_sigma
                xp.divide(1, xp.sqrt(xp.add(var, self.eps, out=inv), out=inv), out=inv)
            x_hat = xp.multiply(xp.subtract(X, mu.reshape(shape), out=work.x_hat), work.inv_sigma.reshape(shape),
                                out=work.x_hat)
            Y = self.backend.empty(X.shape, X.dtype) if out is None else out
            if self.affine:  # Y = gamma x_hat + beta
                xp.add(xp.multiply(x_hat, self.params["gamma"].reshape(shape), out=Y),
                       self.params["beta"].reshape(shape), out=Y)
            else:
                Y[...] = x_hat
            if self.training and self.track_running_stats:
                running.update(xp, self.buffers, mu, var, self.values, self.momentum, work)
        except FAILURES as exc:  # a bound plan's buffers that do not fit: said, not NumPy's words
            raise core_error(self, "forward", exc, X=X, out=out) from None
        self.X, self.x_hat, self.inv_sigma = X, x_hat, work.inv_sigma
        return Y

    def backward(self, dY, out=None):
        """dX, written into ``out`` when given (a buffer of X's shape; dY itself may be it); dY and
        out checked before any gradient is added."""
        shape = () if self.X is None else self.X.shape
        self._check_dY(dY, shape)
        self._check_out(out, shape, "backward")
        return self._backward(dY, out)

    def _backward(self, dY, out=None, work=None):
        xp = self.backend.xp
        try:
            _fits(dY, out)
            work = work or self._work(dY.shape, dY.dtype)
            axes, shape = axes_of(dY)
            dbeta = xp.sum(dY, axis=axes, out=work.dbeta)
            dgamma = xp.sum(xp.multiply(dY, self.x_hat, out=work.w), axis=axes, out=work.dgamma)
            scale = self.inv_sigma  # gamma / sigma, gamma = 1 without affine
            if self.affine:
                self._accumulate("gamma", lambda g: into(g, dgamma))
                self._accumulate("beta", lambda g: into(g, dbeta))
                self._grads_zero = self._grads_stale = False
                scale = xp.multiply(self.params["gamma"], scale, out=work.scale)
            if self.batch_stats and self._shared():  # the global batch's sums, for dX (after the gradients)
                self.share.sum_([dbeta, dgamma])
            dX = self.backend.empty(dY.shape, dY.dtype) if out is None else out
            if not self.batch_stats:
                return xp.multiply(dY, scale.reshape(shape), out=dX)
            m = self.values  # dX = (gamma / sigma / m) (m dY - dbeta - x_hat dgamma)
            xp.subtract(xp.multiply(dY, m, out=dX), dbeta.reshape(shape), out=dX)
            xp.subtract(dX, xp.multiply(self.x_hat, dgamma.reshape(shape), out=work.w), out=dX)
            return xp.multiply(dX, xp.divide(scale, m, out=work.scale_m).reshape(shape), out=dX)
        except FAILURES as exc:
            raise core_error(self, "backward", exc, dY=dY, out=out) from None

    def bind(self, X, Y, dY, dX):
        """The cores on a step plan's buffers (X, Y; dY, dX), with the work arrays of X's shape held
        by them: a captured CUDA graph writes those at every replay, so they live as long as the plan
        does, whatever shapes the layer sees meanwhile. The model's mode is read at every step."""
        work = self._work(X.shape, X.dtype)
        return functools.partial(self._forward, X, Y, work), functools.partial(self._backward, dY, dX, work)

    def _work(self, shape, dtype):
        """The work arrays for inputs of ``shape`` and ``dtype``: made on first use, kept as every
        layer keeps its work arrays (``arrays.kept``: the last few shapes)."""
        shape, dtype = tuple(shape), np.dtype(dtype)
        return kept(self, "statistics", (shape, dtype), lambda: work_arrays(self.backend, shape, dtype,
                                                                            self.num_features))

    def _clear_cache(self):
        super()._clear_cache()
        self.x_hat = self.inv_sigma = None


def _fits(X, out):
    """Refuse (ValueError, named by ``core_error``) an ``out`` of another shape or dtype than X's,
    before anything is written: a bound plan's buffers are not checked per step."""
    if out is not None and (tuple(out.shape) != tuple(X.shape) or out.dtype != X.dtype):
        raise ValueError(f"out must be of X's shape and dtype, got {out.dtype} {tuple(out.shape)} for "
                         f"{X.dtype} {tuple(X.shape)}")
