"""Sequential: a stack of layers run forward in order and backward in reverse.

One hook lets tools watch every layer without touching the layers' code: an
*observer* is any object with ``forward(model, i, layer, X, Y)`` and
``backward(model, i, layer, dY, dX)`` methods (either may be missing), told after
layer ``i`` ran; it may change ``Y``, ``dX`` or ``layer.grads`` in place. A model
tells its own ``observers`` list and those of the enclosing ``observing(...)`` blocks
(how ``gpubp.detect_anomaly`` watches every model it meets). ``dX`` is None when
the first layer computed no input gradient.
"""
from __future__ import annotations

import contextlib
import contextvars
import itertools
import math
import warnings

from . import _checks
from .backend import Backend, default_device, get_backend, parse_spec
from .errors import DeviceError, GpubpWarning, InvalidValueError, ShapeError, StateError
from .nn import ACTIVATIONS, Activation, Dense, Identity, Layer, layer_from_config


_ambient: contextvars.ContextVar = contextvars.ContextVar("gpubp_observers", default=())


@contextlib.contextmanager
def observing(observer):
    """Inside the block every model also reports each layer's forward and backward to ``observer``."""
    token = _ambient.set((*_ambient.get(), observer))
    try:
        yield observer
    finally:
        _ambient.reset(token)


def _tell(observers, event, *args):
    for observer in observers:
        method = getattr(observer, event, None)
        if method is not None:
            method(*args)


class Sequential:
    """Chain of layers on one backend.

    ``forward(X)`` runs each layer's forward; ``backward(dY)`` runs each layer's
    backward in reverse order and returns dL/dX. Parameters and gradients are
    exposed by name (``"0.W"`` is layer 0's weight). With ``seed`` set, every
    parameter is redrawn from one host RNG in layer order, so a seed fixes the
    initial weights on every device. Every layer moves to the model's backend and dtype (a
    GpubpWarning says so when a float64 layer is made float32 without ``dtype`` or ``backend`` asking).
    """

    def __init__(self, layers, backend=None, dtype=None, seed=0):
        self.layers = _layers(layers)
        self.observers: list = []  # see the module docstring
        self._flat = None  # (parameters, gradients) once flatten_ has run
        self._chain = None  # (input shape, layers, their modes) that _check_chain last passed
        seed = _checks.seed("Sequential seed", seed)
        wider = [f"{i} {layer!r}" for i, layer in enumerate(self.layers) if layer.backend.dtype.itemsize > 4]
        self.to(backend, dtype)
        if wider and backend is None and dtype is None and self.backend.dtype.itemsize == 4:
            warnings.warn(f"Sequential: layers {', '.join(wider)} were made float64 and are now float32, the "
                          f"model's dtype; pass dtype='float64' to keep them", GpubpWarning, stacklevel=2)
        if seed is not None:
            drawn = [f"{i} {layer!r}" for i, layer in enumerate(self.layers)
                     if layer.parameters_drawn and layer.parameter_shapes()]
            if drawn:  # trained or loaded values, about to be replaced
                warnings.warn(f"Sequential(seed={seed}) redraws the parameters that layers {', '.join(drawn)} "
                              f"already hold; pass seed=None to keep them", GpubpWarning, stacklevel=2)
            self.reset_parameters(seed)

    def __repr__(self):
        inner = ", ".join(map(repr, self.layers))
        return f"Sequential([{inner}], device={self.backend.device}, dtype={self.backend.dtype})"

    def __call__(self, X):
        return self.forward(X)

    _predicted = False  # the last forward was predict's: the layers hold its inputs, not a training batch's

    def forward(self, X):
        self._predicted = False
        if self._chain != self._chain_key(X):  # a new input shape, new layers or another mode
            self._check_chain(X)
        moved = [f"{i} {layer!r} ({layer.backend.device}/{layer.backend.dtype})"
                 for i, layer in enumerate(self.layers) if layer.backend != self.backend]
        if moved:
            raise DeviceError(f"layers {', '.join(moved)} no longer live on this model's backend "
                              f"({self.backend.device}/{self.backend.dtype}), e.g. moved by another model they are "
                              f"part of; model.to(model.backend) moves them back")
        observers = (*self.observers, *_ambient.get())
        with self.backend.activate():
            for i, layer in enumerate(self.layers):
                Y = layer.forward(X)
                _tell(observers, "forward", self, i, layer, X, Y)
                X = Y
        if self._flat is None:  # parameters drawn on first use (seed=None): now one flat buffer each
            self.flatten_()
        return X

    def _check_chain(self, X):
        """Refuse inputs that some layer will not take before any layer runs (one that did would
        have moved state: Dropout's draws, BatchNorm's running statistics), by each layer's
        ``output_shape`` as far as the layers can tell; remembered for the next forward. The
        layers themselves are checked as the constructor checks them (``layers`` may have been
        replaced or appended to since)."""
        _layers(self.layers)
        shape = getattr(X, "shape", None)
        if shape is None:
            return  # not an array: the first layer says so
        for layer in self.layers:
            shape = layer.output_shape(shape)
            if shape is None:  # a layer that cannot tell: the rest is checked as they run
                break
        self._chain = self._chain_key(X)

    def _chain_key(self, X):
        return getattr(X, "shape", None), list(self.layers), [getattr(layer, "training", None) for layer in self.layers]

    def backward(self, dY, input_grad=True):
        """Backpropagate dL/dY through every layer; returns dL/dX.

        With ``input_grad=False`` (training), a first Dense layer computes only its
        dW and db and None is returned: dL/dX of the data is never needed, and
        skipping it saves a third of that layer's matrix products.
        """
        input_grad = _checks.flag("Sequential.backward input_grad", input_grad)
        if self._predicted:
            raise StateError("Sequential.backward after predict: the layers now hold predict's inputs (in eval "
                             "mode), so the gradients would be of that pass; run forward on the batch again")
        observers = (*self.observers, *_ambient.get())
        with self.backend.activate():
            for i in range(len(self.layers) - 1, -1, -1):
                layer = self.layers[i]
                if i == 0 and not input_grad and hasattr(layer, "backward_params"):
                    layer.backward_params(dY)
                    dX = None
                else:
                    dX = layer.backward(dY)
                _tell(observers, "backward", self, i, layer, dY, dX)
                dY = dX
        return dY

    def parameters(self) -> dict:
        """``{"i.name": array}`` for every parameter, in layer order."""
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.params.items()}

    def parameter_shapes(self) -> dict:
        """``{"i.name": shape}`` of every parameter, known without drawing any."""
        return {f"{i}.{k}": shape for i, layer in enumerate(self.layers)
                for k, shape in layer.parameter_shapes().items()}

    def load_parameters(self, arrays: dict) -> None:
        """Set every parameter from ``{"i.name": array}`` (as ``parameters()`` names them), in
        place where they exist; names, shapes and values (numbers, finite) are all checked before
        anything is written."""
        shapes = self.parameter_shapes()
        if set(_named(arrays, "load_parameters", "parameters")) != set(shapes):
            missing, extra = sorted(set(shapes) - set(arrays)), sorted(map(str, set(arrays) - set(shapes)))
            raise ShapeError(f"parameters do not match the model: missing {missing}, unexpected {extra}")
        checked = [layer.checked_parameters({k: arrays[f"{i}.{k}"] for k in layer.parameter_shapes()}, f"{i}.")
                   for i, layer in enumerate(self.layers)]
        for layer, arrays_i in zip(self.layers, checked):
            layer._write_parameters(arrays_i)
        if self.flat is None:  # some were drawn just now, as separate arrays
            self.flatten_()

    def buffers(self) -> dict:
        """``{"i.name": array}`` of every layer's non-trainable state (BatchNorm's running
        statistics, Dropout's seed and step): what a checkpoint keeps beside the parameters."""
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.buffers.items()}

    def load_buffers(self, arrays: dict) -> None:
        """Set every buffer from ``{"i.name": array}`` (as ``buffers()`` names them); names, shapes and
        values are all checked before anything is written."""
        names = set(self.buffers())
        if set(_named(arrays, "load_buffers", "buffers")) != names:
            raise ShapeError(f"buffers do not match the model: missing {sorted(names - set(arrays))}, "
                             f"unexpected {sorted(set(arrays) - names)}")
        checked = [layer.checked_buffers({k: arrays[f"{i}.{k}"] for k in layer.buffers})
                   for i, layer in enumerate(self.layers)]
        for layer, arrays_i in zip(self.layers, checked):  # nothing written before all passed
            layer._write_buffers(arrays_i)

    def keep_gradients_in(self, arrays: dict) -> None:
        """Store every layer's gradients in ``arrays`` (``{"i.name": array}``, as ``gradients()``
        names them) from now on, e.g. views of the flat buffer a communicator reduces."""
        _named(arrays, "keep_gradients_in", "gradients")
        for i, layer in enumerate(self.layers):
            mine = {k: arrays[f"{i}.{k}"] for k in layer.params if f"{i}.{k}" in arrays}
            if mine:
                layer.keep_gradients_in(mine)

    def gradients(self) -> dict:
        """``{"i.name": array}`` of accumulated gradients, same keys as ``parameters()``."""
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.grads.items()}

    @property
    def generation(self) -> tuple:
        """Changes whenever a layer is swapped or replaces its parameter or gradient arrays
        (not when their values change): an optimizer keeps what it checked until then."""
        return tuple((id(layer), layer.generation) for layer in self.layers)

    def zero_grad(self):
        for layer in self.layers:
            layer.zero_grad()

    def train(self, mode=True):
        """Training mode (``mode=True``, the default) or eval mode (False) for every layer; returns self.

        In training Dropout drops units and BatchNorm normalises by batch statistics (and
        updates its running ones); in eval both are deterministic: Dropout is the identity and
        BatchNorm uses its running statistics.
        """
        mode = _checks.flag("Sequential.train mode", mode)
        for layer in self.layers:
            layer.training = mode
        return self

    def eval(self):
        """Eval mode for every layer (``train(False)``); returns self."""
        return self.train(False)

    @contextlib.contextmanager
    def mode(self, training: bool):
        """A block in training (True) or eval (False) mode; each layer's mode before is restored after."""
        before = [layer.training for layer in self.layers]
        self.train(training)
        try:
            yield self
        finally:
            for layer, was in zip(self.layers, before):
                layer.training = was

    @property
    def training(self) -> bool:
        """True unless ``eval()`` (or ``train(False)``) was called since the last ``train()``."""
        return all(layer.training for layer in self.layers)

    @training.setter
    def training(self, mode):
        self.train(mode)

    def reset_parameters(self, seed=0):
        rng = self.backend.host_rng(_checks.seed("seed", seed))
        for layer in self.layers:
            layer.reset_parameters(rng)
        return self.flatten_()

    def draw_parameters(self) -> "Sequential":
        """Draw now every parameter that waits for its first use (``seed=None``; each layer's
        own seed) and keep them flat (``flatten_``), as the first forward would; returns self."""
        for layer in self.layers:
            layer.params  # noqa: B018  (draws them)
        return self.flatten_() if self._flat is None else self

    def flatten_(self) -> "Sequential":
        """Keep every parameter in one flat buffer and every gradient in another, in the order of
        ``parameters()``, each array a view of it (values kept): what lets an optimizer update
        them all in one kernel launch (``flat``). Done when parameters are drawn, moved or
        loaded; a no-op while some layer has not drawn its parameters yet. Returns self."""
        if not all(layer.parameters_drawn for layer in self.layers):
            return self
        shapes = [p.shape for p in self.parameters().values()]
        sizes = [math.prod(s) for s in shapes]
        with self.backend.activate():
            flat = self.backend.zeros((sum(sizes),)), self.backend.zeros((sum(sizes),))
        ends = list(itertools.accumulate(sizes))
        views = [[f[e - n:e].reshape(s) for e, n, s in zip(ends, sizes, shapes)] for f in flat]
        k = 0
        for layer in self.layers:
            names = list(layer.params)
            layer.keep_parameters_in(dict(zip(names, views[0][k:k + len(names)])))
            layer.keep_gradients_in(dict(zip(names, views[1][k:k + len(names)])))
            k += len(names)
        self._flat = flat
        return self

    @property
    def flat(self):
        """``(parameters, gradients)``, each one flat array, while every parameter and gradient
        still lives in the buffers of ``flatten_`` (None once any was replaced)."""
        flat = self._flat
        if flat is None or not flat[0].size:
            return None
        lives_in = self.backend.lives_in  # by address: a copied model's arrays are no views any more
        same = lives_in(list(self.parameters().values()), flat[0]) and lives_in(list(self.gradients().values()), flat[1])
        return flat if same else None

    def to(self, backend, dtype=None):
        """Move every layer to ``backend`` (spec or Backend, optionally re-typed); returns self.

        Without ``dtype``, a Backend keeps its dtype, a spec keeps the model's (float32 at first).
        """
        current = getattr(self, "backend", None)
        if dtype is None and not isinstance(backend, Backend) and current is not None:
            dtype = None if parse_spec(default_device() if backend is None else backend)[1] else current.dtype
        self.backend = get_backend(backend, dtype)
        for layer in self.layers:
            layer.to(self.backend)
        return self.flatten_() if current is not None and current != self.backend else self

    def config(self) -> list:
        """Architecture as a list of layer configs (see ``from_config``)."""
        return [layer.config() for layer in self.layers]

    @classmethod
    def from_config(cls, config, backend=None, dtype=None, seed=0):
        """A new Sequential with the architecture ``config`` (fresh parameters from ``seed``)."""
        if not isinstance(config, (list, tuple)):
            raise InvalidValueError(f"from_config takes a list of layer configs (what config() gives), "
                                    f"got a {type(config).__name__}")
        backend = get_backend(backend, dtype)
        return cls([layer_from_config(c, backend) for c in config], backend=backend, seed=seed)

    def predict(self, X):
        """Eval-mode forward pass on data converted to the model's backend and dtype (any device, list or array)."""
        with self.mode(False):
            Y = self.forward(self.backend.asarray(X, self.backend.dtype))
        self._predicted = True
        return Y


def _named(arrays, method, like):
    """``arrays`` when it is a dict (of arrays by name, as ``like()`` gives), else an InvalidValueError."""
    if not isinstance(arrays, dict):
        raise InvalidValueError(f"Sequential.{method} takes a dict {{name: array}} like {like}() gives, "
                                f"got a {type(arrays).__name__}")
    return arrays


def _layers(layers) -> list:
    """``layers`` as a list of Layer objects whose Dense widths chain (checked here, with the
    layer index, rather than at the first forward)."""
    if isinstance(layers, Layer):
        raise InvalidValueError(f"Sequential takes a list of layers, got one layer ({layers!r}); "
                                f"write Sequential([{layers!r}])")
    try:
        layers = list(layers)
    except TypeError:
        raise InvalidValueError(f"Sequential takes a list of layers, got a {type(layers).__name__}") from None
    if not layers:
        raise ShapeError("Sequential needs at least one layer")
    width = None  # (index, layer) that fixes the width flowing into the next layer, if known
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise InvalidValueError(f"Sequential: item {i} is a {type(layer).__name__} ({layer!r:.60}), "
                                    f"not a gpubp layer")
        same = [j for j, other in enumerate(layers[:i]) if other is layer]
        if same:  # its backward would read the input saved by its later use, and it would be updated twice
            raise InvalidValueError(f"Sequential: item {i} {layer!r} is the same layer object as item {same[0]}; "
                                    f"a layer can appear once (create a second one)")
        if isinstance(layer, Dense):
            if width is not None and width[1].n_out != layer.n_in:
                j, before = width
                raise ShapeError(f"Sequential: layer {i} {layer!r} expects inputs of width {layer.n_in}, but "
                                 f"layer {j} {before!r} outputs width {before.n_out}")
            width = (i, layer)
        elif not isinstance(layer, (Activation, Identity)):
            width = None  # a layer of unknown shape change
    return layers


def mlp(n_in, hidden, n_out, activation="relu", backend=None, dtype=None, seed=0) -> Sequential:
    """Dense -> activation for each size in ``hidden``, then a Dense output layer.

    He initialisation for the ReLU family, Glorot otherwise.
    """
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise InvalidValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
    try:
        hidden = list(hidden)
    except TypeError:
        raise InvalidValueError(f"mlp: hidden must be a list of widths, e.g. [64, 64], got {hidden!r}") from None
    backend = get_backend(backend, dtype)
    sizes, stack = [n_in, *hidden], []
    init = "he_uniform" if activation in ("relu", "leaky_relu") else "xavier_uniform"
    for a, b in zip(sizes, sizes[1:]):
        stack += [Dense(a, b, init=init, backend=backend), ACTIVATIONS[activation](backend=backend)]
    stack.append(Dense(sizes[-1], n_out, backend=backend))
    return Sequential(stack, backend=backend, seed=seed)
