"""Sequential: a stack of layers run forward in order and backward in reverse, telling the
observers (observers.py) after each layer; its arrays by name live in state.py, what it holds its
layers to in checks.py, its train and eval modes in modes.py. Also ``mlp``.
"""
from __future__ import annotations

import warnings

from .. import _checks
from ..backend import Backend, default_device, get_backend, parse_spec
from ..errors import DeviceError, GpubpWarning, InvalidValueError, ShapeError, StateError
from ..nn import ACTIVATIONS, LAYERS, Dense, Layer, layer_from_config
from ..nn.arrays import values
from ..nn.base import TORCH_NAMES
from ..nn.moves import dtype_named
from .checks import check_gradients_written, check_returned, checked_layers, config_of, gpubp_layer
from .modes import TrainingModes
from .observers import observer_list, observers_of, tell
from .state import ModelState, refuse_shared_memory


class Sequential(ModelState, TrainingModes):
    """Chain of layers on one backend.

    ``forward(X)`` runs each layer's forward; ``backward(dY)`` runs each layer's
    backward in reverse order and returns dL/dX. Parameters, gradients and buffers are
    exposed by name (``"0.W"`` is layer 0's weight; ``ModelState``). With ``seed`` set, every
    parameter is redrawn from one host RNG in layer order and each Dropout's seed derived from it
    (step 0), so a seed fixes the initial weights and masks on every device (a GpubpWarning names
    the layers whose trained, loaded or chosen values it replaces; a refused draw, named by its layer,
    leaves every layer as given: ``reset_parameters``). Every layer moves to the model's backend and dtype (a
    GpubpWarning says so when a float64 layer is made float32 without ``dtype`` or ``backend`` asking).
    """

    # set later too, each is checked as here (layers as the constructor checks them)
    layers = _checks.Checked(lambda name, value: checked_layers(value))
    observers = _checks.Checked(observer_list)  # told after each layer (observers.py)
    backend = _checks.Checked(_checks.instance, kind=Backend, hint="move a model with model.to(device)")

    def __init__(self, layers, backend=None, dtype=None, seed=0, *more, **options):
        if any(isinstance(a, Layer) for a in (backend, dtype, seed, *more)):  # PyTorch's nn.Sequential(a, b, ...)
            given = ", ".join(repr(a) for a in (layers, backend, dtype, seed, *more) if isinstance(a, Layer))
            raise InvalidValueError(f"Sequential takes its layers as one list, got them as separate arguments; "
                                    f"write Sequential([{given}])")
        if more or options:  # an argument Sequential does not take, by position or by name
            extra = [repr(a)[:40] for a in more] + [f"{k}={v!r:.40}" for k, v in options.items()]
            raise InvalidValueError(f"Sequential takes (layers, backend=None, dtype=None, seed=0), got also "
                                    f"{', '.join(extra)}" + (" (give the device as backend=)" if "device" in options
                                                             else ""))
        self.layers = layers
        self.observers = []
        self._chain = None  # (input shape, layers, their modes) that _check_chain last passed
        seed = _checks.seed("Sequential seed", seed)
        wider = [f"{i} {layer!r}" for i, layer in enumerate(self.layers) if layer.backend.dtype.itemsize > 4]
        given = [dict(vars(layer)) for layer in self.layers]  # a refused draw puts every layer back as given
        self.to(backend, dtype)
        if wider and backend is None and dtype is None and self.backend.dtype.itemsize == 4:
            warnings.warn(f"Sequential: layers {', '.join(wider)} were made float64 and are now float32, the "
                          f"model's dtype; pass dtype='float64' to keep them", GpubpWarning, stacklevel=2)
        if seed is not None:
            held = {}  # what each layer holds that the seed replaces (trained, loaded or set) -> the layers
            for i, layer in enumerate(self.layers):
                if layer.reset_replaces():
                    held.setdefault(layer.reset_replaces(), []).append(f"{i} {layer!r}")
            try:
                self.reset_parameters(seed)  # all or nothing itself; the move above is undone here
            except BaseException:
                for layer, state in zip(self.layers, given):  # the move swapped attributes only: arrays kept
                    vars(layer).clear()
                    vars(layer).update(state)
                raise
            if held:
                what = " and ".join(f"the {k} that layers {', '.join(v)} already hold" for k, v in held.items())
                warnings.warn(f"Sequential(seed={seed}) redraws {what}; pass seed=None to keep them",
                              GpubpWarning, stacklevel=2)

    def __repr__(self):
        inner = ", ".join(map(repr, self.layers))
        return f"Sequential([{inner}], device={self.backend.device}, dtype={self.backend.dtype})"

    def __call__(self, X):
        return self.forward(X)

    def __getattr__(self, name):
        """Only for names not found: a PyTorch module's (state_dict, cuda, ...) said where gpubp keeps it."""
        hint = TORCH_NAMES.get(name) if name not in ("eval", "train", "weight", "bias") else None
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}"
                             + (f" (PyTorch's name; in gpubp: {hint})" if hint else ""))

    _predicted = False  # the last forward was predict's: the layers hold its inputs, not a training batch's
    _inputs: dict = {}  # {i: input shape} of the user's layers in the last forward (their dX is of it)
    _ran = None  # the layers the last forward ran through; () while one runs (or after one failed)

    def forward(self, X):
        self._predicted, self._ran = False, ()
        if self._chain != self._chain_key(X):  # a new input shape, new layers, another mode or device
            self._check_chain(X)
        if self._flat is None:  # the flatten_ after this forward would untie arrays that share memory
            refuse_shared_memory(self._memory(), "Sequential.forward")
        observers, self._inputs = observers_of(self), {}
        with self.backend.activate():
            for i, layer in enumerate(self.layers):
                Y = layer.forward(X)
                if not gpubp_layer(layer):  # a user's: what it returned is checked before anyone reads it
                    self._inputs[i] = X.shape
                    check_returned(self.backend, layer, "forward", Y, layer.output_shape(X.shape), i)
                tell(observers, "forward", self, i, layer, X, Y)
                X = Y
        if self._flat is None:  # parameters drawn on first use (seed=None): now one flat buffer each
            self.flatten_()
        self._ran = list(self.layers)
        return X

    def _check_chain(self, X):
        """Refuse inputs that some layer will not take before any layer runs (one that did would
        have moved state: Dropout's draws, BatchNorm's running statistics), by each layer's
        ``output_shape`` as far as the layers can tell; remembered for the next forward. The
        layers themselves are checked as the constructor checks them (``layers`` may have been
        replaced or appended to since), and each must still live on the model's backend."""
        self.check_layers()
        if getattr(X, "shape", None) is None:
            return  # not an array: the first layer says so
        self.output_shape(X.shape)
        self._chain = self._chain_key(X)

    def check_layers(self):
        """Refuse layers that are no gpubp layers (``layers`` may have been replaced or appended to
        since the constructor checked them) or that do not live on the model's backend: put in after
        the model was made (a layer moves to its model's backend and dtype where the model is made or
        moved), or moved by another model they are part of; each named with its backend."""
        checked_layers(self.layers)
        moved = [f"{i} {layer!r} ({layer.backend.device}/{layer.backend.dtype})"
                 for i, layer in enumerate(self.layers) if layer.backend != self.backend]
        if moved:
            raise DeviceError(f"layers {', '.join(moved)} do not live on this model's backend "
                              f"({self.backend.device}/{self.backend.dtype}): put in after the model was made, or "
                              f"moved by another model they are part of; model.to(model.backend) moves them here")

    def output_shape(self, shape):
        """The output shape for inputs of ``shape``, by each layer's ``output_shape`` in its present
        mode (None where a layer cannot tell: a user's); a layer's refusal is raised naming its index
        and the shapes up to it (after Flatten: how many values the images became)."""
        trail = [str(tuple(shape))]
        for i, layer in enumerate(self._layers()):
            try:
                shape = layer.output_shape(tuple(shape))
            except ShapeError as exc:
                steps = f"; the shapes up to it: {' -> '.join(trail)}" if i else ""
                raise ShapeError(f"{exc} (layer {i}{steps})") from None
            if shape is None:  # a layer that cannot tell: the rest is checked as they run
                return None
            trail += [type(layer).__name__, str(tuple(shape))]
        return tuple(shape)

    def _chain_key(self, X):
        """What a passed chain check holds for: the input shape, the layers, each one's mode and backend."""
        return (getattr(X, "shape", None), list(self.layers),
                [(getattr(layer, "training", None), getattr(layer, "backend", None)) for layer in self.layers])

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
        layers = self._layers()  # junk put in since: named first
        self._check_ran()
        observers = observers_of(self)
        with self.backend.activate():
            for i in range(len(layers) - 1, -1, -1):
                layer = layers[i]
                if i == 0 and not input_grad and hasattr(layer, "backward_params"):
                    layer.backward_params(dY)
                    dX = None
                else:
                    dX = layer.backward(dY)
                    if not gpubp_layer(layer) and (dX is not None or i or input_grad):
                        check_returned(self.backend, layer, "backward", dX, self._inputs.get(i), i)
                if not gpubp_layer(layer):
                    check_gradients_written(layer, i)
                tell(observers, "backward", self, i, layer, dY, dX)
                dY = dX
        return dY

    def _check_ran(self):
        """Refuse a backward whose forward did not finish, or ran through other layers than the model now
        holds (one removed, inserted or replaced since): each layer's backward reads what its own last
        forward saved, so the gradients would be of no pass that ran (a removed ReLU's mask left out, the
        layers before a failed one holding the new batch, those after it the old)."""
        ran = self._ran
        if ran == ():
            raise StateError("Sequential.backward after a forward that did not finish (it raised): the layers "
                             "before the one that failed hold that batch, the others the one before; run forward again")
        if ran is not None and ran != self.layers and ran != list(self.layers):
            raise StateError(f"Sequential.backward: the model's layers changed since the last forward (it ran "
                             f"through {len(ran)} layers, the model has {len(self.layers)}, not all the same "
                             f"objects), so the gradients would be of no pass that ran; run forward again")

    def to(self, backend, dtype=None):
        """Move every layer to ``backend`` (spec or Backend, optionally re-typed); returns self.

        Without ``dtype``, a Backend keeps its dtype, a spec keeps the model's (float32 at first).
        All or nothing: every array of every layer is converted and checked (``Layer.moved_arrays``)
        before the model or any layer changes, so a refusal (a value beyond the new dtype's range,
        named) leaves the model as it was. Arrays that share memory (tied weights) are refused
        first: the move would give each name a copy of its own.
        """
        current = self.__dict__.get("backend")  # None while the constructor runs
        named, dtype = dtype_named(backend), dtype_named(dtype, dtype)  # PyTorch's dtypes as NumPy's
        if dtype is None and current is not None and named is not None:  # PyTorch's model.to(torch.float64)
            backend, dtype = current.device, named
        if dtype is None and not isinstance(backend, Backend) and current is not None:
            dtype = None if parse_spec(default_device(check=True) if backend is None else backend)[1] else current.dtype
        new = get_backend(backend, dtype)
        moving = [(i, layer) for i, layer in enumerate(checked_layers(self.layers)) if layer.backend != new]
        if moving:  # each array moved on its own: a copy each
            refuse_shared_memory(self._memory(), "Sequential.to")
        arrays = [layer.moved_arrays(new, f"{i}.") for i, layer in moving]
        self.backend = new
        for (_, layer), moved in zip(moving, arrays):
            layer._take_moved(new, moved)
        return self.flatten_() if current is not None and (moving or current != new) else self

    def config(self) -> list:
        """Architecture as a list of layer configs (see ``from_config``), each as a checkpoint stores it and
        reads it back (JSON: tuples as lists, NumPy scalars as numbers), so that a saved architecture equals
        the model's when a resume compares them; a layer's ``config()`` that JSON cannot hold is refused
        here, naming the layer, before anything is written (``checks.plain``)."""
        return [config_of(i, layer) for i, layer in enumerate(self._layers())]

    @classmethod
    def from_config(cls, config, backend=None, dtype=None, seed=0):
        """A new Sequential with the architecture ``config`` (fresh parameters from ``seed``)."""
        if not isinstance(config, (list, tuple)):
            raise InvalidValueError(f"from_config takes a list of layer configs (what config() gives), "
                                    f"got a {type(config).__name__}")
        backend = get_backend(backend, dtype)
        for i, c in enumerate(config):
            name = c.get("type") if isinstance(c, dict) else None
            if isinstance(name, str) and name not in LAYERS:
                raise InvalidValueError(f"layer {i}: unknown layer type {name!r} in config; known: {sorted(LAYERS)}. "
                                        f"A layer class of your own is not rebuilt from its name: build the model "
                                        f"in code and read a checkpoint into it with checkpoint.load_into(path, model)")
        return cls([layer_from_config(c, backend) for c in config], backend=backend, seed=seed)

    def predict(self, X):
        """Eval-mode forward pass on data converted to the model's backend and dtype (any device, list or array)."""
        with self.mode(False):
            Y = self.forward(values(self.backend, X, "Sequential.predict X"))
        self._predicted = True
        return Y


def mlp(n_in, hidden, n_out, activation="relu", backend=None, dtype=None, seed=0, **options) -> Sequential:
    """Dense -> activation for each size in ``hidden``, then a Dense output layer.

    He initialisation for the ReLU family, Glorot otherwise.
    """
    if options:
        raise InvalidValueError(f"mlp takes (n_in, hidden, n_out, activation='relu', backend=None, dtype=None, "
                                f"seed=0), got also {', '.join(f'{k}={v!r:.40}' for k, v in options.items())}")
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise InvalidValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
    try:
        if isinstance(hidden, (str, bytes, dict, set, frozenset)):  # "" or {} would read as no hidden layer
            raise TypeError
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
