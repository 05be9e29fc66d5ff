"""The Layer base class: parameters drawn once on first use, gradients that accumulate until
``zero_grad()`` (and read as zeros right after it), buffers, train/eval mode, moving between
backends; and the registry every gpubp layer joins, so ``layer_from_config`` rebuilds it.

Notation (seed 001, section 7): a layer maps X to Y; ``dY`` is dL/dY coming from the
layer above and ``backward`` returns dX = dL/dX for the layer below.
"""
from __future__ import annotations

import functools
import types

from .. import _checks
from ..backend import Backend, default_device, get_backend, parse_spec
from ..errors import InvalidValueError, ShapeError, StateError
from .arrays import Arrays, Buffers, check_out, check_replacement, values

LAYERS: dict = {}  # type name -> class: every concrete layer gpubp defines, registered as it is defined


class Layer:
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
    training = True  # the model's mode (Sequential.train / eval): Dropout and BatchNorm read it
    _buffers_kept = types.MappingProxyType({})  # none, unless a layer keeps some (keep_buffers)
    _own_reset_running = False  # a subclass's own reset_parameters runs under drawn_arrays
    seed = None  # the seed of its own first draw when no model hands it an RNG (a user's layer need not set one)
    backward_reads = ("X", "Y")  # what backward reads of its input and output (``reads_in_backward``)

    def __init_subclass__(cls, abstract=False, **kwargs):
        super().__init_subclass__(**kwargs)
        if not abstract and cls.__module__.split(".")[0] == "gpubp":
            LAYERS[cls.__name__] = cls

    def __init__(self, backend=None):
        self.backend = get_backend(backend)
        # None: not drawn yet (see params); a class that states or draws parameters (a user's too, which
        # overrides parameter_shapes and drawn_parameters only) has them drawn on first use
        stated = _defines_own(type(self), "parameter_shapes") or _defines_own(type(self), "drawn_parameters")
        self._params: dict | None = None if stated else {}
        self._grads: dict = {}
        self._grads_zero = True   # the next backward overwrites grads instead of adding
        self._grads_stale = False  # grads hold values from before zero_grad (read as zeros)

    def __call__(self, X):
        return self.forward(X)

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
        raise NotImplementedError

    def backward(self, dY):
        raise NotImplementedError

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

    def parameter_shapes(self) -> dict:
        """``{name: shape}`` of the parameters, known without drawing them."""
        return {}

    def reset_parameters(self, rng):
        """Redraw parameters from the host RNG ``rng``: ``drawn_arrays(rng)`` swapped in (no-op for
        parameter-free layers)."""
        self._take_drawn(self.drawn_arrays(rng))

    def drawn_parameters(self, rng, prefix="") -> dict:
        """``{name: array}`` of new parameters drawn from ``rng`` on this layer's device, checked
        (a refusal names the layer and ``prefix``-ed parameter, e.g. "1.W"); nothing is set. A
        layer with parameters overrides this; {}: none."""
        return {}

    def drawn_arrays(self, rng, prefix="") -> dict:
        """What ``reset_parameters(rng)`` sets, as ``moved_arrays`` gives it (parameters and zero
        gradients, None when none are drawn; buffers), the layer left as it was: a model draws every
        layer's first and swaps them in only when all passed (``_take_drawn``). A class that keeps
        its own ``reset_parameters`` (a user's layer) is reset and then put back as it was, even when
        the reset raises; what it set travels under "reset"."""
        if _defines_own(type(self), "reset_parameters") and not self._own_reset_running:
            return self._reset_undone(rng)
        params = self._checked_draw(self.drawn_parameters(rng, prefix), prefix)
        params = params or (None if self._params is not None else {})  # {}: drawn, none (stated none)
        grads = None
        if params is not None:
            with self.backend.activate():
                grads = {k: self.backend.zeros(p.shape) for k, p in params.items()}
        return {"parameter": params, "gradient": grads, "buffer": {}}

    def _checked_draw(self, drawn, prefix) -> dict:
        """What ``drawn_parameters`` returned, refused naming the layer and parameter unless it is a dict of
        the names ``parameter_shapes`` states (when it states any), each finite numbers of the stated shape;
        an array on the host or of another dtype (a user's layer drawing with NumPy) is taken into this
        layer's dtype on its device, as a callable initialiser's is."""
        if not isinstance(drawn, dict):
            raise InvalidValueError(f"{self!r}.drawn_parameters must return a dict {{name: array}}, got "
                                    f"{type(drawn).__name__} {drawn!r:.60}")
        shapes = self.parameter_shapes()
        if shapes and set(drawn) != set(shapes):
            raise ShapeError(f"{self!r}.drawn_parameters drew {sorted(drawn)}, but parameter_shapes says "
                             f"{sorted(shapes)}; draw each of them (override drawn_parameters(rng, prefix))")
        checked = {}
        for name, a in drawn.items():
            what = f"{self!r} parameter {prefix}{name}"
            if not (self.backend.is_own(a) and a.dtype == self.backend.dtype):
                a = values(self.backend, a, what)
            if name in shapes and tuple(a.shape) != tuple(shapes[name]):
                raise ShapeError(f"{what} has shape {tuple(a.shape)}, parameter_shapes says {tuple(shapes[name])}")
            checked[name] = self.backend.check_finite(a, what)
        return checked

    def _reset_undone(self, rng) -> dict:
        """``drawn_arrays`` of a layer with its own ``reset_parameters``: run it, keep what it set
        (its attributes, and values it wrote into arrays it already held), put the layer back."""
        before = dict(self.__dict__)
        held = [a for arrays in (self._params or {}, self._grads if self._params else {}, self.buffers)
                for a in arrays.values()]
        saved = [a.copy() for a in held]
        try:
            self._own_reset_running = True  # its super().reset_parameters draws as Layer's does
            self.reset_parameters(rng)
            del self._own_reset_running
            after, written = dict(self.__dict__), [a.copy() for a in held]
        finally:
            for a, value in zip(held, saved):
                a[...] = value
            self.__dict__.clear()
            self.__dict__.update(before)
        params, grads = after.get("_params"), after.get("_grads")
        return {"parameter": None if params is None else dict(params),
                "gradient": None if params is None else dict(grads), "buffer": {},
                "reset": (after, list(zip(held, written)))}

    def _take_drawn(self, arrays: dict) -> None:
        """Hold ``arrays`` (``drawn_arrays``) from now on; nothing here can be refused."""
        if "reset" in arrays:
            after, written = arrays["reset"]
            self.__dict__.clear()
            self.__dict__.update(after)
            for a, value in written:
                a[...] = value
        elif arrays["parameter"] is not None:
            self._take(arrays)
            self._grads_zero, self._grads_stale = True, False

    def reset_replaces(self) -> str:
        """What ``reset_parameters`` would replace that this layer already holds, in words ("" for
        nothing; a seeded ``Sequential`` warns naming it): its parameters, once drawn."""
        return "parameters" if self.parameters_drawn and self.parameter_shapes() else ""

    def load_parameters(self, arrays: dict) -> None:
        """Set every parameter from ``{name: array}`` (any device, lists too), in place once they
        exist: no random draw, and arrays an optimizer holds stay the same objects. Names, shapes
        and values (numbers, finite) are all checked before anything is written."""
        self._write_parameters(self.checked_parameters(arrays))

    def checked_parameters(self, arrays: dict, prefix="") -> dict:
        """``arrays`` as this layer's parameters would hold them (copies in its dtype on its device),
        or the error that ``load_parameters`` would raise (names given ``prefix``, e.g. "0.")."""
        if not isinstance(arrays, dict):
            raise InvalidValueError(f"{self!r}: parameters are loaded from a dict {{name: array}}, "
                                    f"got a {type(arrays).__name__}")
        checked = self._checked_arrays("parameter", arrays, self.parameter_shapes(), prefix)
        for name, a in checked.items():
            self.backend.check_finite(a, f"{self!r} parameter {prefix}{name}")
        return checked

    def _write_parameters(self, checked: dict) -> None:
        """Set the parameters from ``checked_parameters`` output."""
        if self._params is None:
            self._set_parameters(checked)
        else:
            for name, param in self._params.items():
                param[...] = checked[name]

    @property
    def buffers(self) -> dict:
        """Non-trainable state a checkpoint keeps, ``{name: array}`` (BatchNorm's running statistics,
        Dropout's counters): an array set under a name is checked and copied in (``Buffers``)."""
        return self._buffers_kept

    @buffers.setter
    def buffers(self, arrays) -> None:
        """Set once, by a layer's constructor (``keep_buffers``); then refused: values are loaded."""
        if "_buffers_kept" in self.__dict__:
            raise InvalidValueError(f"{self!r}.buffers cannot be replaced; set values with buffers[name] = array "
                                    f"or load_buffers({{name: array}})")
        if not isinstance(arrays, dict):
            raise InvalidValueError(f"{self!r}.buffers must be a dict {{name: array}}, got a {type(arrays).__name__}")
        self.keep_buffers(arrays)

    def keep_buffers(self, arrays: dict) -> None:
        """Make ``arrays`` (``{name: array}`` on this layer's device) the layer's buffers: what its
        constructor and ``to`` do. ``load_buffers`` writes new values into them."""
        self._buffers_kept = Buffers(self, arrays)

    def load_buffers(self, arrays: dict) -> None:
        """Set the ``buffers`` from ``{name: array}`` (any device), in place; names, shapes and
        values are all checked before anything is written."""
        self._write_buffers(self.checked_buffers(arrays))

    def checked_buffers(self, arrays: dict) -> dict:
        """``arrays`` as ``load_buffers`` writes them (the names of ``buffers``, each array of its
        buffer's shape, in this layer's dtype), or the error it raises; a layer whose buffers hold
        more (a range, integers) extends or overrides this."""
        return self._checked_arrays("buffer", arrays, {name: buf.shape for name, buf in self.buffers.items()})

    def _checked_arrays(self, kind, arrays, shapes: dict, prefix="") -> dict:
        """``arrays`` as new arrays of this layer's dtype on its device, refused unless it is a dict
        of exactly the names of ``shapes`` ({name: shape}), each array of its shape."""
        if not isinstance(arrays, dict) or set(arrays) != set(shapes):
            got = sorted(map(str, arrays)) if isinstance(arrays, dict) else repr(arrays)[:80]
            raise ShapeError(f"{self!r} has {kind}s {sorted(shapes)}, got {got}")
        checked = {}
        for name, shape in shapes.items():
            what = f"{self!r} {kind} {prefix}{name}"
            a = checked[name] = values(self.backend, arrays[name], what)
            if tuple(a.shape) != tuple(shape):
                raise ShapeError(f"{what} has shape {tuple(a.shape)}, the architecture says {tuple(shape)}")
        return checked

    def _write_buffers(self, checked: dict) -> None:
        """Write ``checked_buffers`` output into the buffers, in place."""
        for name, value in checked.items():
            self.buffers[name][...] = value

    def keep_gradients_in(self, arrays: dict) -> None:
        """Store the gradients in ``arrays`` from now on (``{name: array}`` of their shapes and
        dtype on this device, e.g. views of one flat buffer that a communicator reduces in
        place); their current values are copied in."""
        self._keep_in(self.grads, arrays, "gradient")

    def keep_parameters_in(self, arrays: dict) -> None:
        """Store the parameters in ``arrays`` from now on (views of a model's flat buffer,
        ``Sequential.flatten_``); their current values are copied in."""
        self._keep_in(self.params, arrays, "parameter")

    def _keep_in(self, store: dict, arrays: dict, what: str) -> None:
        """Every array checked before any is written: a refused one leaves the others' values as given."""
        if not isinstance(arrays, dict):
            raise InvalidValueError(f"{self!r}.keep_{what}s_in takes a dict {{name: array}}, got a {type(arrays).__name__}")
        for name, array in arrays.items():
            check_replacement(self, what, store, name, array)
        for name, array in arrays.items():
            array[...] = store[name]
        store.update(arrays)
        self.generation += 1

    def _set_parameters(self, params: dict) -> None:
        self._params = Arrays(self, "parameter", params)
        self._grads = Arrays(self, "gradient", {k: self.backend.zeros(v.shape) for k, v in params.items()})
        self.generation += 1
        self._grads_zero, self._grads_stale = True, False

    def config(self) -> dict:
        """What rebuilds this layer (without parameters): ``layer_from_config(config())``."""
        return {"type": type(self).__name__}

    def to(self, backend):
        """Move every array this layer holds per device (``moved_arrays``) to ``backend`` (Backend or
        spec; None: the default device, as ``Sequential.to``); returns self. All or nothing: each is
        converted and checked before any is swapped in, so a refusal (a value beyond the new dtype's
        range, named) leaves the layer as it was. Parameters not drawn yet are drawn later, there."""
        if not isinstance(backend, Backend):
            device, dtype = parse_spec(default_device() if backend is None else backend)
            backend = get_backend(device, dtype or self.backend.dtype)
        if backend != self.backend:
            self._take_moved(backend, self.moved_arrays(backend))
        return self

    def moved_arrays(self, backend: Backend, prefix="") -> dict:
        """New arrays holding, as ``backend`` would, what this layer keeps per device:
        ``{"parameter": ..., "gradient": ..., "buffer": ...}``, each ``{name: array}`` (parameters and
        gradients None while not drawn; the buffers of the layer's dtype on its device, not host
        counters such as Dropout's). A value the new dtype cannot hold is refused, named (``prefix``:
        e.g. "0."), and this layer is left as it was: ``to`` swaps the arrays in (``_take_moved``)."""
        def moved(kind, arrays):
            return {k: values(backend, a, f"{self!r} {kind} {prefix}{k}") for k, a in arrays.items()}
        params = grads = None
        if self._params is not None:
            params = moved("parameter", self._params)
            with backend.activate():
                grads = ({k: backend.zeros(p.shape) for k, p in params.items()} if self._grads_stale  # read as zeros
                         else moved("gradient", self._grads))
        own = {k: b for k, b in self.buffers.items() if self.backend.is_own(b) and b.dtype == self.backend.dtype}
        return {"parameter": params, "gradient": grads, "buffer": moved("buffer", own)}

    def _take_moved(self, backend: Backend, arrays: dict) -> None:
        """Live on ``backend`` with ``arrays`` (``moved_arrays(backend)``); nothing here can be refused."""
        self.backend = backend
        self._take(arrays)
        self._clear_cache()

    def _take(self, arrays: dict) -> None:
        """Hold the new arrays of ``moved_arrays`` or ``drawn_arrays`` (None: the parameters kept)."""
        if arrays["parameter"] is not None:
            self._params = Arrays(self, "parameter", arrays["parameter"])
            self._grads = Arrays(self, "gradient", arrays["gradient"])
            self.generation += 1
        if arrays["buffer"]:
            self.keep_buffers({**self.buffers, **arrays["buffer"]})

    def _clear_cache(self):
        for name in ("X", "Y"):
            if hasattr(self, name):
                setattr(self, name, None)
        self.__dict__.pop("_kept_work", None)  # work arrays on the old device (arrays.kept)

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


def defining_class(cls, name):
    """The class of ``cls``'s MRO that defines ``name``, or None (Layer defines every method)."""
    return next((c for c in cls.__mro__ if name in vars(c)), None)


def _defines_methods(cls) -> bool:
    """Whether ``cls`` itself defines a method or property (dunder methods aside)."""
    return any(not k.startswith("__") and (callable(v) or isinstance(v, property)) for k, v in vars(cls).items())


def _defines_own(cls, name) -> bool:
    """Whether a class below Layer (between ``cls`` and Layer) defines ``name`` itself."""
    return next(c for c in cls.__mro__ if name in vars(c)) is not Layer


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
