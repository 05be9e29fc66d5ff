"""The Layer base class: parameters drawn once on first use, gradients that accumulate until
``zero_grad()`` (and read as zeros right after it), train/eval mode, the checks of a forward's and
a backward's arrays, and ``ShapeKeeping`` for layers whose output has their input's shape; and the
registry every gpubp layer joins, so ``layer_from_config`` rebuilds it. Drawing parameters
(parameter_draws.py), loading and keeping parameters and buffers (stored.py) and moving to another
backend (moves.py) are its bases.

Notation (seed 001, section 7): a layer maps X to Y; ``dY`` is dL/dY coming from the
layer above and ``backward`` returns dX = dL/dX for the layer below.
"""
from __future__ import annotations

import functools

from .. import _checks
from ..backend import Backend, get_backend
from ..errors import InvalidValueError, ShapeError, StateError
from .arrays import FAILURES, check_out, shape_error
from .moves import LayerMoves
from .parameter_draws import ParameterDraws, defines_own
from .stored import StoredArrays

LAYERS: dict = {}  # type name -> class: every concrete layer gpubp defines, registered as it is defined


class Layer(ParameterDraws, StoredArrays, LayerMoves):
    """Base class: ``params``/``grads`` dicts of arrays on ``self.backend``.

    A layer with parameters draws them on first use (``params``), from the RNG its
    model hands it (``Sequential(..., seed=)``) or else from its own ``seed``: each
    array is drawn once on the host and uploaded once, whatever the model does first. A
    layer of one's own with parameters says them (``parameter_shapes``) and draws them
    (``drawn_parameters``); what it draws is checked there, naming the layer and parameter.
    Every concrete layer class of gpubp (``abstract=False``) lands in ``LAYERS``, so
    ``layer_from_config`` rebuilds it; a user's own subclass is left out (its
    ``config()`` need not name its constructor's arguments).

    ``forward`` keeps a reference to what ``backward`` needs (its input X, or its output),
    not a copy: an array edited in place between the two changes the gradients, as in
    NumPy code written by hand. PyTorch refuses that by version counters; gpubp does not
    check (it would copy or hash every input of every step), so write new arrays instead.
    """

    backend = _checks.Checked(_checks.instance, kind=Backend, hint="move a layer with layer.to(device)")
    capturable = False  # its bound step can be recorded in a CUDA graph (plan/graph.py)
    generation = 0  # counts replacements of the parameter or gradient arrays (Sequential.generation)
    # the model's mode (Sequential.train / eval), read by Dropout and BatchNorm: True or False when set
    training = _checks.Checked(_checks.flag)
    seed = None  # the seed of its own first draw when no model hands it an RNG (a user's layer need not set one)
    backward_reads = ("X", "Y")  # what backward reads of its input and output (``reads_in_backward``)

    def __init_subclass__(cls, abstract=False, **kwargs):
        super().__init_subclass__(**kwargs)
        if not abstract and cls.__module__.split(".")[0] == "gpubp":
            LAYERS[cls.__name__] = cls

    def __init__(self, backend=None):
        self.backend = get_backend(backend)
        self.training = True
        # None: not drawn yet (see params); a class that states or draws parameters (a user's too, which
        # overrides parameter_shapes and drawn_parameters only) has them drawn on first use
        stated = defines_own(type(self), "parameter_shapes") or defines_own(type(self), "drawn_parameters")
        self._params: dict | None = None if stated else {}
        self._grads: dict = {}
        self._grads_zero = True   # the next backward overwrites grads instead of adding
        self._grads_stale = False  # grads hold values from before zero_grad (read as zeros)

    def __call__(self, X, **options):
        """``forward(X)``, its options too (``layer(X, out=buffer)`` as ``layer.forward(X, out=buffer)``)."""
        return self.forward(X, **options)

    def __getattr__(self, name):
        """Only for names not found (never on the path of a step): the state ``__init__`` sets, read on a
        layer whose class's ``__init__`` never called ``super().__init__``, refused saying so (``set_up``)."""
        if name in _SET_UP and "backend" not in vars(self):
            set_up(self)
        hint = TORCH_NAMES.get(name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}"
                             + (f" (PyTorch's name; in gpubp: {hint})" if hint else ""))

    def output_shape(self, shape):
        """The shape of the output for inputs of ``shape``, a ShapeError naming the layer when it
        cannot take them, or None when the layer cannot tell before it runs (a user's layer)."""
        return None

    def output_form(self, form):
        """``output_shape`` as far as it is known when a model is built, before any data: ``form`` is
        (number of axes, size of axis 1) of the input, each None where unknown; returns the output's, or
        raises a ShapeError saying what this layer expects ("expects ..."). (None, None) where it cannot
        tell (a user's layer); ``Sequential`` checks its chain by it."""
        return None, None

    def __repr__(self):
        return f"{type(self).__name__}()"

    def forward(self, X):
        """Y for the input X; saves what backward reads. A layer of one's own defines it."""
        raise NotImplementedError(f"{type(self).__name__} defines no forward(X): a Layer of one's own returns its "
                                  f"output Y from forward(X), saving what its backward reads (self.X = X)")

    def backward(self, dY):
        """dX = dL/dX for dY = dL/dY, the parameters' gradients added into ``grads``. A layer of one's own
        that trains defines it."""
        raise NotImplementedError(f"{type(self).__name__} defines no backward(dY): a Layer of one's own that is "
                                  f"trained returns dX = dL/dX from backward(dY), writing dL/dp into self.grads[name]")

    def bind(self, X, Y, dY, dX):
        """This layer's forward and backward in a step plan (gpubp/plan/) as two functions of
        no arguments on the plan's buffers: input ``X``, output ``Y``, incoming ``dY`` and
        outgoing ``dX`` (None: no input gradient wanted). The plan has run ``forward`` once on
        these shapes, so shapes and dtypes are checked: by default the unchecked cores that the
        checked methods run after their checks (``_forward(X, out)``, ``_backward(dY, out)``,
        ``_backward_params(dY)``) where the layer has them, else the checked methods."""
        forward = self._unchecked("forward")
        if dX is None and hasattr(self, "backward_params"):  # only dW, db: the layer can skip dX
            return functools.partial(forward, X, out=Y), functools.partial(self._unchecked("backward_params"), dY)
        return functools.partial(forward, X, out=Y), functools.partial(self._unchecked("backward"), dY, out=dX)

    def reads_in_backward(self) -> tuple:
        """What this layer's backward reads of its input ("X") and of its output ("Y"): a step plan writes
        deltas over the others once the forward is done (gpubp/plan/layout.py). The ``backward_reads``
        of the class that says it, which holds for gpubp's own classes below it too; where a user's class
        below it defines methods of its own (a backward of its own, maybe), both."""
        mro = type(self).__mro__
        for cls in mro[:mro.index(defining_class(type(self), "backward_reads"))]:
            if cls.__module__.split(".")[0] != "gpubp" and _defines_methods(cls):
                return ("X", "Y")
        return tuple(self.backward_reads)

    def _unchecked(self, name):
        """The core ``_<name>`` of the checked method ``name`` when the class defining the core
        derives from the one defining ``name`` (a subclass that overrides only ``name`` keeps it)."""
        checked, core = defining_class(type(self), name), defining_class(type(self), "_" + name)
        return getattr(self, "_" + name) if core is not None and issubclass(core, checked) else getattr(self, name)

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

    @property
    def parameters_drawn(self) -> bool:
        """False while the parameters wait to be drawn on first use."""
        return self._params is not None

    @property
    def grads_stale(self) -> bool:
        """True from ``zero_grad()`` until the next backward: ``grads`` then reads (fills) zeros."""
        return self._grads_stale

    def zero_grad(self):
        """Start a new accumulation: the next backward *overwrites* ``grads`` instead of
        adding to them, so no pass over memory writes zeros first (a read before then sees zeros)."""
        self._grads_zero = self._grads_stale = True

    def config(self) -> dict:
        """What rebuilds this layer (without parameters): ``layer_from_config(config())``."""
        return {"type": type(self).__name__}

    def _accumulate(self, name, compute):
        """grads[name] (+)= compute(out): written directly right after zero_grad."""
        if self._grads_zero:
            compute(self._grads[name])
        else:
            self._grads[name] += compute(None)

    def _check_forward(self, X, out, ndim=None):
        """Refuse, before any work, an input ``X`` this layer cannot take (``output_shape`` says) or
        an ``out`` buffer (None: none given) not of the output's shape."""
        self.backend.check_array(X, f"{type(self).__name__} input", ndim=ndim)
        self._check_out(out, self.output_shape(X.shape), "forward")

    def _check_backward(self, dY, out=None):
        """Refuse, before any gradient is added, a ``dY`` not of the last forward output's shape
        (that forward's input saved as ``X``) or an ``out`` buffer not of the input's shape."""
        self._check_dY(dY, () if self.X is None else self.output_shape(self.X.shape))
        self._check_out(out, self.X.shape, "backward")

    def _own_buffer(self, out, what, **read):
        """Refuse an ``out`` buffer (None: none given) that shares memory with an array ``what`` reads
        (``read``: {name: array}): the NumPy paths work in several in-place passes over ``out`` (LeakyReLU's
        max(z, slope z), the sigmoid's delta = (1 - s) s g, MaxPool2D's zeroed gradient), so they would read
        what they already wrote, where a CUDA kernel, elementwise, would not."""
        if out is None:
            return
        shared = [name for name, a in read.items() if self.backend.xp.may_share_memory(a, out)]
        if shared:
            raise InvalidValueError(f"{self!r}.{what}: out shares memory with {' and '.join(shared)}, which "
                                    f"{what} reads as it writes out (a layer never writes its inputs, as "
                                    f"PyTorch's inplace=False); give out a buffer of its own")

    def _check_dY(self, dY, shape):
        self.backend.check_array(dY, f"{type(self).__name__}.backward dY")
        if getattr(self, "Y", None) is None and getattr(self, "X", None) is None:
            raise StateError(f"{type(self).__name__}.backward called before forward")
        if tuple(dY.shape) != tuple(shape):
            raise ShapeError(f"{type(self).__name__}.backward: dY has shape {tuple(dY.shape)}, "
                             f"expected {tuple(shape)} (the forward output's shape)")

    def _check_out(self, out, shape, what):
        """Refuse an ``out`` buffer (None: none given) that is not a ``shape`` array of this
        layer's dtype on its device, before any work: numbers written into a buffer of another
        shape would be broadcast or cut, into another dtype rounded or truncated."""
        check_out(self.backend, out, shape, f"{type(self).__name__}.{what} out",
                  "output" if what == "forward" else "input gradient dX")


class ShapeKeeping(Layer, abstract=True):
    """A layer whose output has its input's shape, whatever it is (the activations, Identity, Dropout)."""

    def output_shape(self, shape):
        try:
            return tuple(shape)
        except FAILURES as exc:
            raise shape_error(self, shape, exc) from None

    def output_form(self, form):
        return tuple(form)


_SET_UP = ("_params", "_grads", "_grads_zero", "_grads_stale")  # what Layer.__init__ sets beside the backend

TORCH_NAMES = {  # what ported code reads of a PyTorch module, and where gpubp keeps it (a layer's and a model's)
    "weight": "params['W'] (Dense's W is (n_in, n_out), PyTorch's Linear weight transposed; BatchNorm's gamma)",
    "bias": "params['b'] (BatchNorm's beta)",
    "running_mean": "buffers['running_mean']", "running_var": "buffers['running_var']",
    "state_dict": "parameters() and buffers() by name, or gpubp.checkpoint to save a model",
    "load_state_dict": "load_parameters({name: array}) and load_buffers(...), or gpubp.checkpoint.load_into",
    "named_parameters": "parameters() ({name: array})", "named_buffers": "buffers() ({name: array})",
    "cuda": "to('cuda')", "cpu": "to('cpu')", "double": "to('float64')", "float": "to('float32')",
    "modules": "layers (a model's list of layers)", "children": "layers (a model's list of layers)",
    "eval": "layer.training = False (a model's eval() sets every layer's)", "train": "layer.training = True",
}


def set_up(layer, where=""):
    """``layer``, refused (``where``: who asks, e.g. "Sequential: item 1 ") unless ``Layer.__init__`` ran
    on it: a class of one's own whose ``__init__`` never called ``super().__init__`` has no backend and no
    parameter state, and would fail inside with Python's AttributeError ('Checked' object has no attribute
    'dtype'). As PyTorch's Module, a Layer is set up by its base's ``__init__``."""
    if "backend" not in vars(layer):
        name = type(layer).__name__
        raise InvalidValueError(f"{where}{name} was never set up as a gpubp Layer: {name}.__init__ must call "
                                f"super().__init__(backend) (or super().__init__()) before it sets anything")
    return layer


def defining_class(cls, name):
    """The class of ``cls``'s MRO that defines ``name``, or None (Layer and its bases define every method)."""
    return next((c for c in cls.__mro__ if name in vars(c)), None)


def _defines_methods(cls) -> bool:
    """Whether ``cls`` itself defines a method or property (dunder methods aside)."""
    return any(not k.startswith("__") and (callable(v) or isinstance(v, property)) for k, v in vars(cls).items())


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
