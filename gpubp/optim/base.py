"""The optimizer base class: its update bound once per model (``prepare``: one fused kernel per
parameter, or one for a flat model) and launched per step; its state saved and restored (its
slots checked, made and moved: slots.py)."""
from __future__ import annotations

import functools
import warnings
import weakref
from typing import NamedTuple

import numpy as np

from .._checks import integer
from .._compat import to_host
from ..backend import Backend, default_device, get_backend, parse_spec
from ..errors import GpubpWarning, InvalidValueError, StateError
from .arguments import nonnegative, positive, refuse_parameters
from .slots import OptimizerSlots
from .state import TORCH_OPTIONS, Hyperparameters, SlotState, checked_state, construct, slots_by_parameter


class Updates(NamedTuple):
    """An optimizer's update of one model, bound once (``Optimizer.prepare``)."""

    scalars: object   # the kernel's scalars for the current step, a small array on the device
    layers: list      # the layers whose gradients are updated (read as zeros after zero_grad alone)
    runs: list        # the bound kernels: one per parameter, or one for all of a flat model
    arrays: list      # every gradient, parameter and slot the runs touch


class Optimizer(OptimizerSlots):
    """Base class: subclasses name their ``kernel``, state ``slots`` and ``scalars()``."""

    kernel = None  # a registry Kernel (gpubp/backend/kernels/updates.py)
    slots: tuple = ()
    nonnegative_slots: tuple = ()  # slots that hold sums of squares (a negative one gives NaN steps)

    TORCH_OPTIONS = TORCH_OPTIONS  # PyTorch's optimizer arguments taken at their defaults only

    def __new__(cls, *args, **kwargs):
        refuse_parameters(cls.__name__, args, kwargs)  # before Python binds them: PyTorch's SGD(params, lr=...)
        return super().__new__(cls)

    def __init__(self, lr, **hyper):
        self.lr = positive("lr", lr)
        self._hyper = Hyperparameters(type(self), hyper, self._hyper_changed)  # checked by the subclass's constructor
        self.t, self._prepared, self._loaded = 0, None, False
        self.state: dict = {}
        self._slot_names = tuple(self.slots)  # the slots the state is kept in (``_hyper_changed``)

    @property
    def lr(self) -> float:
        """The learning rate of the next step: a finite float >= 0 (a schedule may reach 0);
        anything else is refused when it is set, not found in the parameters after a step."""
        return self._lr

    @lr.setter
    def lr(self, value) -> None:
        self._lr = nonnegative("lr", value)

    @property
    def t(self) -> int:
        """The number of steps taken: a whole number >= 0 (the bias corrections divide by 1 - beta^t)."""
        return self._t

    @t.setter
    def t(self, value) -> None:
        self._t = integer("optimizer t (steps taken)", value, minimum=0)

    @property
    def hyper(self) -> dict:
        """The rule's hyperparameters but ``lr`` (``{"momentum": 0.9, ...}``): one set later is checked
        as the constructor checks it (``Hyperparameters``), and the next step uses it, also one that
        changes the slots the rule keeps (``_hyper_changed``). ``optimizer.hyper = {...}`` sets those
        it names; the others keep their values (none can be removed)."""
        return self._hyper

    @hyper.setter
    def hyper(self, hyper) -> None:
        if not isinstance(hyper, dict):
            raise InvalidValueError(f"{type(self).__name__} hyper must be a dict of hyperparameters, got {hyper!r:.80}")
        if "lr" in hyper:  # the constructor would take it, and the optimizer keep its own
            raise InvalidValueError(f"{type(self).__name__}.hyper holds no lr: set optimizer.lr = {hyper['lr']!r:.40}")
        kept = {k: v for k, v in self.__dict__.get("_hyper", {}).items()
                if not ("betas" in hyper and k in ("beta1", "beta2"))}  # the others keep their values
        checked = construct(type(self), {**kept, **hyper}).hyper  # checked by a fresh optimizer's constructor
        self._hyper = Hyperparameters(type(self), checked, self._hyper_changed)
        self._hyper_changed()

    @property
    def state(self) -> dict:
        """``{parameter name: {slot: array}}``: momentum buffers, moving averages."""
        return self._state

    @state.setter
    def state(self, state: dict) -> None:
        self._state = SlotState(slots_by_parameter(state), self._unbind)  # a slot set later unbinds too
        self._prepared = None  # the slots ``prepare`` found are no longer these
        self._added = set()  # slots a hyperparameter change added, made at the next step (none in state set here)
        self._owner = None  # the model these slots belong to: the next one stepped
        self._holders = {}  # {parameter name: weakref to the layer its slots were made for} (``prepare``)

    def _unbind(self) -> None:
        """Forget the update bound to the slot arrays: a slot was replaced (the next step binds anew)."""
        self._prepared = None

    def __getstate__(self):
        """Copies and pickles keep the hyperparameters, ``t`` and the slots, not the update bound
        to a model nor which model that was: ``deepcopy((model, optimizer))`` steps the copied
        model with the copied slots (the first model stepped owns them, as for a new optimizer)."""
        return {**self.__dict__, "_prepared": None, "_owner": None, "_holders": {}}

    def __setstate__(self, d):
        self.__dict__.update(d)
        self._hyper = Hyperparameters(type(self), d["_hyper"], self._hyper_changed)  # checked again when set
        added = d.get("_added", set())
        self.state = d["_state"]  # its slots tracked again
        self._added, self._slot_names, self._holders = set(added), tuple(self.slots), {}

    def __getattr__(self, name):
        """Only for names not found: a PyTorch optimizer's (zero_grad, param_groups) said where gpubp keeps it."""
        hint = TORCH_NAMES.get(name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}"
                             + (f" (PyTorch's name; in gpubp: {hint})" if hint else ""))

    def __repr__(self):
        args = ", ".join(f"{k}={v}" for k, v in {"lr": self.lr, **self.hyper}.items())
        return f"{type(self).__name__}({args})"

    def scalars(self) -> tuple:
        raise NotImplementedError

    def step(self, model=None, closure=None):
        """One update of every parameter of ``model`` from its accumulated gradients. ``closure``
        (PyTorch's): a function that recomputes the gradients and returns the loss, called first;
        its loss is returned (None without one)."""
        loss = None
        if closure is not None:
            _model(model)  # known to be a model before the closure runs
            loss = closure()
        updates = self.prepared(model)
        model.backend.write(updates.scalars, self.advance(model.backend.dtype))
        self.launch(updates, model.backend)
        return loss

    def advance(self, dtype) -> tuple:
        """The next step's scalars, ``t`` counted, each checked (``checked_scalars``); a refused step
        leaves ``t`` as it was: nothing changed (``step``, and a graphed step's replay)."""
        self._t += 1  # a whole number >= 0 plus one: no need of the setter's check at every step
        try:
            return self.checked_scalars(dtype)
        except InvalidValueError:
            self._t -= 1
            raise

    def checked_scalars(self, dtype) -> tuple:
        """``scalars()`` for this step, each checked to be finite in ``dtype``, the model's: a learning
        rate or hyperparameter beyond its range (lr=1e39 in float32) would be an inf scalar that turns
        every parameter into inf or NaN at once, without an error (CuPy raises no warning either)."""
        scalars, largest = self.scalars(), _largest(dtype)
        for name, value in zip(self.kernel.scalars, scalars):
            if not abs(value) <= largest:  # NaN too
                raise InvalidValueError(
                    f"{type(self).__name__}: the step's {name} = {value:g} (from {self!r}) is beyond the model's "
                    f"{np.dtype(dtype)} (largest {largest:.3g}), so the update would turn its parameters into "
                    f"inf/NaN; give a smaller lr or hyperparameter (the parameters are unchanged)")
        return scalars

    def prepare(self, model) -> "Updates":
        """The update of every parameter of ``model`` bound once (``Backend.bind``), each gradient
        and slot checked (any two of parameters, gradients and slots sharing memory refused: a
        tied weight would be stepped once per name) and each slot made before any parameter
        changes; the kernels read the step's scalars from ``Updates.scalars``, a small array on
        the model's device that ``step`` writes.
        A model whose parameters and gradients each live in one flat buffer (``Sequential.flat``)
        gets flat slots too and one kernel for all of them (the same numbers: it is elementwise).
        A layer put in place of another (``model.layers[i] = ...``) gets slots of its own, zeros, not
        the moments of the layer it replaced (the step count ``t`` stays the optimizer's)."""
        if callable(getattr(_model(model), "check_layers", None)):  # a layer of another backend, named as such
            model.check_layers()
        backend, params, grads = model.backend, model.parameters(), model.gradients()
        missing = [name for name in params if name not in grads]
        if missing:
            raise InvalidValueError(f"{type(self).__name__}: the model has no gradient for its parameters {missing} "
                                    f"(model.gradients() lacks them), so it cannot be stepped")
        if not params:  # PyTorch refuses an empty parameter list; a step here would change nothing, silently
            warnings.warn(f"{type(self).__name__}: the model has no parameters, so its steps change nothing",
                          GpubpWarning, stacklevel=4)  # the caller of step()
        if getattr(self, "_loaded", False):  # cleared once this prepare succeeds: a refused one checks again
            self._check_state_names(params)
        owner = self._owner and self._owner()  # None: none yet, or one no longer alive (refused all the same)
        if self._owner is not None and owner is not model and any(self._state.values()):
            raise StateError(f"{type(self).__name__} holds the slots (momentum, moving averages) of another model"
                             f"{'' if owner is not None else ', no longer alive,'} which would be applied to this "
                             f"one; create a new optimizer for this model, or set optimizer.state = {{}} and "
                             f"optimizer.t = 0 to start afresh")
        eps = self.hyper.get("eps")
        # sqrt(0) + 0: a zero gradient's step is 0/0 (an eps beyond the dtype is refused by step's scalars)
        if eps is not None and eps <= float(np.finfo(backend.dtype).max) and backend.dtype.type(eps) == 0:
            raise InvalidValueError(f"{type(self).__name__} eps={eps:g} is 0 in the model's {backend.dtype}, so a "
                                    f"zero gradient's step would be 0/0 = NaN; give eps >= "
                                    f"{float(np.finfo(backend.dtype).smallest_subnormal):.3g}")
        layers = [layer for layer in getattr(model, "layers", ()) if layer.params]
        holders = _holders(model)
        replaced = {name for name, layer in holders.items()
                    if name in self._holders and self._holders[name]() is not layer}
        with backend.activate():
            grads = {name: backend.check_array(grads[name], f"gradient {name}") for name in params}
            self._check_slots(params, grads, backend, replaced)  # before any slot is made or moved
            work = [(grads[name], param, self._slots(name, param, backend, name in replaced))
                    for name, param in params.items()]
            flat = getattr(model, "flat", None)  # (parameters, gradients)
            if flat is not None:
                work = [(flat[1], flat[0], self._flatten_slots(list(params), backend))]
            scalars = backend.zeros(len(self.kernel.scalars))
            views = [scalars[i, ...] for i in range(scalars.size)]  # 0-d views, read at each launch
            runs = [backend.bind(self.kernel, grad, *views, param, *slots) for grad, param, slots in work]
        self._owner, self._loaded, self._added = weakref.ref(model), False, set()  # every added slot made
        self._holders = {name: weakref.ref(layer) for name, layer in holders.items()}
        return Updates(scalars, layers, runs, [a for grad, param, slots in work for a in (grad, param, *slots)])

    def prepared(self, model) -> "Updates":
        """``prepare(model)``, kept while the model's arrays and this state stay the same ones
        (``Sequential.generation``), so a step re-checks nothing that cannot have changed."""
        if self._owner is None or self._owner() is not model:  # the model stepped last was checked then
            _model(model)
        generation = getattr(model, "generation", None)
        if generation is None:  # nothing tells when its arrays change
            self._prepared = None
            return self.prepare(model)
        if self._prepared is None or self._prepared[0] != self._key(model, generation):
            updates = self.prepare(model)  # which may draw the parameters: the generation read anew
            self._prepared = (self._key(model, model.generation), updates)
        return self._prepared[1]

    def _key(self, model, generation) -> tuple:
        """What a kept update is for: the model, its arrays' generation, its backend, this rule."""
        return id(model), generation, model.backend, self.kernel, self.slots

    @staticmethod
    def launch(updates, backend) -> None:
        """The bound update kernels of ``prepare`` (with the scalars ``updates.scalars`` holds)."""
        with backend.activate():
            for layer in updates.layers:
                if layer.grads_stale:  # zero_grad() and no backward since
                    layer.grads  # noqa: B018  (reads zeros: fills them)
            for run in updates.runs:
                run()

    def state_dict(self) -> dict:
        """Host copy of everything needed to continue exactly: type, hyperparameters, t, state."""
        state = {n: {s: np.array(to_host(a)) for s, a in st.items()} for n, st in self.state.items()}
        for slots in state.values():  # slots a hyperparameter change added, not made yet: their zeros
            for slot in self._added - set(slots) if slots else ():
                slots[slot] = np.zeros_like(next(iter(slots.values())))
        return {"type": type(self).__name__, "hyper": {"lr": self.lr, **self.hyper}, "t": self.t, "state": state}

    def load_state_dict(self, d: dict, backend=None) -> None:
        """Restore ``state_dict()`` output onto ``backend`` (a Backend or a device spec; None: the default
        device, and the next step moves it to its model's), exactly.
        The saved hyperparameters replace this optimizer's; everything is checked first (kind,
        hyperparameters as the constructor checks them, ``t``, each slot's name, dtype and
        values), so a refused state leaves this optimizer as it was."""
        self._load_checked(checked_state(d, type(self)), backend)

    def _load_checked(self, saved: dict, backend) -> None:
        if not isinstance(backend, Backend):  # a spec: its dtype, else the saved slots' (float32 if none)
            arrays = [a for st in saved["state"].values() for a in st.values()]
            named = parse_spec(default_device(check=True) if backend is None else backend)[1]
            backend = get_backend(backend, None if named else arrays[0].dtype if arrays else "float32")
        self.lr, self.hyper, self.t = saved["lr"], saved["hyper"], saved["t"]
        self.state = {n: {s: backend.asarray(a) for s, a in st.items()} for n, st in saved["state"].items()}
        self._loaded = True  # the next prepare checks it is this model's


@functools.lru_cache
def _largest(dtype) -> float:
    """The largest finite number of ``dtype``."""
    return float(np.finfo(dtype).max)


def _model(model):
    """``model`` when it is one an optimizer can step (a Sequential, or any object with ``backend``,
    ``parameters()`` and ``gradients()``), else an InvalidValueError naming what it got."""
    if not all(hasattr(model, a) for a in ("backend", "parameters", "gradients")):
        torch = model is None or callable(model) and not hasattr(model, "backend")  # PyTorch's step(), step(closure)
        raise InvalidValueError(f"an optimizer steps a model (a gpubp Sequential: backend, parameters(), "
                                f"gradients()), got a {type(model).__name__} {model!r:.60}"
                                + ("; call optimizer.step(model), or optimizer.step(model, closure) (a PyTorch "
                                   "optimizer knows its parameters; a gpubp one is given the model)" if torch else ""))
    if not isinstance(model.backend, Backend):
        raise InvalidValueError(f"an optimizer steps a model whose backend is a gpubp Backend (gpubp.get_backend(...)),"
                                f" got a {type(model).__name__} whose backend is {model.backend!r:.60}")
    return model


TORCH_NAMES = {  # what ported code calls on a PyTorch optimizer, and where gpubp keeps it
    "zero_grad": "model.zero_grad(), the gradients are the model's (fit zeroes them each step)",
    "param_groups": "optimizer.lr and optimizer.hyper, one group: the optimizer steps the whole model",
    "add_param_group": "one optimizer steps one whole model; give another model an optimizer of its own",
    "defaults": "optimizer.hyper (and optimizer.lr)"}


def _holders(model) -> dict:
    """``{parameter name: the layer holding it}`` (names as ``model.parameters()`` gives them)."""
    return {f"{i}.{k}": layer for i, layer in enumerate(getattr(model, "layers", ())) for k in layer.params}
