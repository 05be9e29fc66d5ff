"""Layers with explicit forward and backward passes (the delta rule).

Notation (seed 001, section 7): a layer maps X to Y; ``dY`` is dL/dY coming from
the layer above and ``backward`` returns dX = dL/dX for the layer below. For
``Dense``, Y = X W + b, so with ``delta = dY``::

    dW = X^T delta      db = sum over the batch of delta      dX = delta W^T

Activation layers turn dY into delta = dY * f'(z) with one fused kernel, so
stacking ``Dense`` and ``Sigmoid`` gives delta_l = (delta_{l+1} W_{l+1}^T) * f'(z_l).
Gradients accumulate in ``grads`` across backward calls until ``zero_grad()``.
"""
from __future__ import annotations

import types

from . import _checks
from .backend import Backend, get_backend, parse_spec
from .backend.kernels import activations
from .errors import InvalidValueError, ShapeError, StateError
from .initializers import get_initializer

LAYERS: dict = {}  # type name -> class: every concrete layer gpubp defines, registered as it is defined


class Layer:
    """Base class: ``params``/``grads`` dicts of arrays on ``self.backend``.

    A layer with parameters draws them on first use (``params``), from the RNG its
    model hands it (``Sequential(..., seed=)``) or else from its own ``seed``: each
    array is drawn once on the host and uploaded once, whatever the model does first.
    Every concrete layer class of gpubp (``abstract=False``) lands in ``LAYERS``, so
    ``layer_from_config`` rebuilds it; a user's own subclass is left out (its
    ``config()`` need not name its constructor's arguments).
    """

    training = True  # the model's mode (Sequential.train / eval): Dropout and BatchNorm read it
    buffers = types.MappingProxyType({})  # non-trainable state a checkpoint keeps (BatchNorm's running stats)

    def __init_subclass__(cls, abstract=False, **kwargs):
        super().__init_subclass__(**kwargs)
        if not abstract and cls.__module__.split(".")[0] == "gpubp":
            LAYERS[cls.__name__] = cls

    def __init__(self, backend=None):
        self.backend = get_backend(backend)
        self._params: dict | None = {}  # None: not drawn yet (see params)
        self._grads: dict = {}
        self._grads_zero = True   # the next backward overwrites grads instead of adding
        self._grads_stale = False  # grads hold values from before zero_grad (read as zeros)

    def __call__(self, X):
        return self.forward(X)

    def __repr__(self):
        return f"{type(self).__name__}()"

    def forward(self, X):
        raise NotImplementedError

    def backward(self, dY):
        raise NotImplementedError

    @property
    def params(self) -> dict:
        """``{name: array}`` an optimizer updates in place (drawn on first use)."""
        if self._params is None:
            self.reset_parameters(self.backend.host_rng(self.seed))
        return self._params

    @property
    def grads(self) -> dict:
        """``{name: array}`` accumulated since ``zero_grad()`` (zeros right after it)."""
        self.params  # noqa: B018  (gradients exist once parameters do)
        if self._grads_stale:
            for g in self._grads.values():
                g.fill(0)
            self._grads_stale = False
        return self._grads

    def zero_grad(self):
        """Start a new accumulation: the next backward *overwrites* ``grads`` instead of
        adding to them, so no pass over memory writes zeros first (a read before then sees zeros)."""
        self._grads_zero = self._grads_stale = True

    def parameter_shapes(self) -> dict:
        """``{name: shape}`` of the parameters, known without drawing them."""
        return {}

    def reset_parameters(self, rng):
        """Redraw parameters from the host RNG ``rng`` (no-op for parameter-free layers)."""

    def load_parameters(self, arrays: dict) -> None:
        """Set every parameter from ``{name: array}`` (any device), in place once they exist:
        no random draw, and arrays an optimizer holds stay the same objects."""
        shapes = self.parameter_shapes()
        if set(arrays) != set(shapes):
            raise ShapeError(f"{self!r} has parameters {sorted(shapes)}, got {sorted(arrays)}")
        for name, shape in shapes.items():
            if tuple(arrays[name].shape) != shape:
                raise ShapeError(f"{self!r} parameter {name} has shape {shape}, got {tuple(arrays[name].shape)}")
        if self._params is None:
            self._set_parameters({k: self.backend.asarray(arrays[k]) for k in shapes})
        else:
            for name, param in self._params.items():
                param[...] = self.backend.asarray(arrays[name])

    def load_buffers(self, arrays: dict) -> None:
        """Set the ``buffers`` from ``{name: array}`` (layers with buffers override this)."""
        if arrays:
            raise ShapeError(f"{self!r} has no buffers, got {sorted(arrays)}")

    def _set_parameters(self, params: dict) -> None:
        self._params = params
        self._grads = {k: self.backend.zeros(v.shape) for k, v in params.items()}
        self._grads_zero, self._grads_stale = True, False

    def config(self) -> dict:
        """What rebuilds this layer (without parameters): ``layer_from_config(config())``."""
        return {"type": type(self).__name__}

    def to(self, backend):
        """Move parameters and gradients to ``backend`` (Backend or spec); returns self.
        Parameters not drawn yet are drawn later, on the new backend."""
        if not isinstance(backend, Backend):
            device, dtype = parse_spec(backend)
            backend = get_backend(device, dtype or self.backend.dtype)
        if backend != self.backend:
            if self._params is not None:
                host = {k: self.backend.to_numpy(v) for k, v in self._params.items()}
                self.backend = backend
                self._set_parameters({k: backend.asarray(v) for k, v in host.items()})
            self.backend = backend
            self._clear_cache()
        return self

    def _clear_cache(self):
        for name in ("X", "Y"):
            if hasattr(self, name):
                setattr(self, name, None)

    def _accumulate(self, name, compute):
        """grads[name] (+)= compute(out): written directly right after zero_grad."""
        if self._grads_zero:
            compute(self._grads[name])
        else:
            self._grads[name] += compute(None)

    def _check_dY(self, dY, shape):
        self.backend.check_array(dY, f"{type(self).__name__}.backward dY")
        if getattr(self, "Y", None) is None and getattr(self, "X", None) is None:
            raise StateError(f"{type(self).__name__}.backward called before forward")
        if tuple(dY.shape) != tuple(shape):
            raise ShapeError(f"{type(self).__name__}.backward: dY has shape {tuple(dY.shape)}, "
                             f"expected {tuple(shape)} (the forward output's shape)")


class Dense(Layer):
    """Affine layer Y = X W + b with W of shape (n_in, n_out) (no b with ``bias=False``)."""

    def __init__(self, n_in: int, n_out: int, init="xavier_uniform", seed=None, backend=None, bias=True):
        super().__init__(backend)
        for name, value in (("n_in", n_in), ("n_out", n_out)):
            _checks.integer(f"Dense {name}", value)
        if n_in < 1 or n_out < 1:
            raise ShapeError(f"Dense needs n_in >= 1 and n_out >= 1, got ({n_in}, {n_out})")
        get_initializer(init)  # an unknown name is refused now, not at the first forward
        if not isinstance(bias, bool):
            raise InvalidValueError(f"Dense bias must be True or False, got {bias!r}")
        self.n_in, self.n_out, self.init, self.bias = int(n_in), int(n_out), init, bias
        self.seed, self._params, self.X = _checks.seed("Dense seed", seed), None, None

    def __repr__(self):
        return f"Dense({self.n_in}, {self.n_out})"

    def config(self):
        init = self.init if isinstance(self.init, str) else "xavier_uniform"
        return {"type": "Dense", "n_in": self.n_in, "n_out": self.n_out, "init": init, "bias": self.bias}

    def parameter_shapes(self):
        return {"W": (self.n_in, self.n_out), **({"b": (self.n_out,)} if self.bias else {})}

    def reset_parameters(self, rng):
        params = {"W": self.backend.asarray(get_initializer(self.init)(rng, self.n_in, self.n_out))}
        if self.bias:
            params["b"] = self.backend.zeros((self.n_out,))
        self._set_parameters(params)

    def forward(self, X, out=None):
        """Y = X W + b, written into ``out`` when given (a buffer of shape (N, n_out))."""
        self.backend.check_array(X, "Dense input", ndim=2)
        if X.shape[1] != self.n_in:
            raise ShapeError(f"Dense({self.n_in}, {self.n_out}) expects inputs of width {self.n_in}, "
                             f"got shape {tuple(X.shape)}")
        self.X = X
        Y = self.backend.xp.matmul(X, self.params["W"], out=out)
        if self.bias:
            Y += self.params["b"]
        return Y

    def backward(self, dY, out=None):
        self.backward_params(dY)
        return self.backend.xp.matmul(dY, self.params["W"].T, out=out)  # dX = delta W^T

    def backward_params(self, dY):
        """The parameter half of ``backward``: dW and db only (no dX, e.g. for the first layer)."""
        self._check_dY(dY, (self.X.shape[0] if self.X is not None else -1, self.n_out))
        xp, X = self.backend.xp, self.X
        self._accumulate("W", lambda out: xp.matmul(X.T, dY, out=out))  # dW = X^T delta
        if self.bias:
            self._accumulate("b", lambda out: self.backend.sum_rows(dY, out=out))  # db = 1^T delta
        self._grads_zero = self._grads_stale = False


class Activation(Layer, abstract=True):
    """Elementwise f with a fused backward kernel ``delta = dY * f'(.)``.

    Subclasses hold their two registry kernels and say whether the backward needs
    the saved input ``X`` (ReLU family) or the saved output ``Y`` (sigmoid, tanh).
    """

    forward_kernel = backward_kernel = None
    saves = "Y"

    def __init__(self, backend=None):
        super().__init__(backend)
        self.X = self.Y = None

    def _extra(self):
        return ()

    def forward(self, X, out=None):
        """Y = f(X), written into ``out`` when given (a buffer of X's shape)."""
        self.backend.check_array(X, f"{type(self).__name__} input")
        Y = self.backend.apply(self.forward_kernel, X, *self._extra(), out=out)
        if self.saves == "X":
            self.X = X
        else:
            self.Y = Y
        return Y

    def backward(self, dY, out=None):
        saved = self.X if self.saves == "X" else self.Y
        self._check_dY(dY, saved.shape if saved is not None else ())
        return self.backend.apply(self.backward_kernel, dY, saved, *self._extra(), out=out)


class Sigmoid(Activation):
    """Y = 1 / (1 + exp(-X)); delta = dY * Y * (1 - Y)."""

    forward_kernel, backward_kernel = activations.sigmoid, activations.sigmoid_backward


class Tanh(Activation):
    """Y = tanh(X); delta = dY * (1 - Y^2)."""

    forward_kernel, backward_kernel = activations.tanh, activations.tanh_backward


class ReLU(Activation):
    """Y = max(X, 0); delta = dY * [X > 0]."""

    forward_kernel, backward_kernel, saves = activations.relu, activations.relu_backward, "X"


class LeakyReLU(Activation):
    """Y = X if X > 0 else slope * X; delta = dY * (1 if X > 0 else slope)."""

    forward_kernel, backward_kernel, saves = activations.leaky_relu, activations.leaky_relu_backward, "X"

    def __init__(self, slope: float = 0.01, backend=None):
        slope = _checks.number("LeakyReLU slope", slope, low=0, high=1)
        super().__init__(backend)
        self.slope = slope

    def __repr__(self):
        return f"LeakyReLU({self.slope})"

    def config(self):
        return {"type": "LeakyReLU", "slope": self.slope}

    def _extra(self):
        return (self.slope,)


class Identity(Layer):
    """Y = X; dX = dY (both passed through: ``out`` is accepted and left unused)."""

    def forward(self, X, out=None):
        self.backend.check_array(X, "Identity input")
        return X

    def backward(self, dY, out=None):
        self.backend.check_array(dY, "Identity.backward dY")
        return dY


ACTIVATIONS = {"sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU, "leaky_relu": LeakyReLU,
               "identity": Identity}


def layer_from_config(config: dict, backend=None) -> Layer:
    """Rebuild a layer from ``Layer.config()`` on ``backend``."""
    if not isinstance(config, dict):
        raise InvalidValueError(f"a layer config must be a dict like {{'type': 'Dense', ...}}, got {config!r:.80}")
    kwargs = dict(config)
    name = kwargs.pop("type", None)
    if not isinstance(name, str) or name not in LAYERS:
        raise InvalidValueError(f"unknown layer type {name!r} in config; known: {sorted(LAYERS)}")
    try:
        return LAYERS[name](**kwargs, backend=backend)
    except TypeError as exc:  # an argument the layer does not take
        raise InvalidValueError(f"layer config {config!r:.120}: {exc}") from None
