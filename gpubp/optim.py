"""Optimizers: each step is one fused registry kernel per parameter.

``opt.step(model)`` updates every ``model.parameters()[name]`` in place from
``model.gradients()[name]``. State (momentum buffers, moving averages) is
created lazily on the model's backend; if the model moves to another backend,
the state moves with it on the next step, values kept (a model of other shapes
is refused with a ShapeError before any parameter changes). ``opt.lr`` is a
plain float that a schedule may change between steps. Update rules follow
``torch.optim`` (see ``gpubp/backend/kernels/updates.py``); the defaults that differ
are stated in each class. ``scalars()`` derives the kernel's scalars (``1 - beta``,
``lr / (1 - beta1^t)``...) from the hyperparameters on the host in float64; the
backend rounds each once to the model's dtype.
"""
from __future__ import annotations

import inspect
from typing import NamedTuple

import numpy as np

from ._checks import flag, integer, number
from ._compat import to_host
from .backend import Backend, get_backend
from .backend.kernels import updates
from .errors import DTypeError, InvalidValueError, NumericalError, ShapeError


class Updates(NamedTuple):
    """An optimizer's update of one model, bound once (``Optimizer.prepare``)."""

    scalars: object   # the kernel's scalars for the current step, a small array on the device
    layers: list      # the layers whose gradients are updated (read as zeros after zero_grad alone)
    runs: list        # the bound kernels: one per parameter, or one for all of a flat model
    arrays: list      # every gradient, parameter and slot the runs touch


class Optimizer:
    """Base class: subclasses name their ``kernel``, state ``slots`` and ``scalars()``."""

    kernel = None  # a registry Kernel (gpubp/backend/kernels/updates.py)
    slots: tuple = ()
    nonnegative_slots: tuple = ()  # slots that hold sums of squares (a negative one gives NaN steps)

    def __init__(self, lr, **hyper):
        self.lr = _positive("lr", lr)
        self.hyper = hyper
        self.t, self._prepared, self._loaded = 0, None, False
        self.state: dict = {}

    @property
    def lr(self) -> float:
        """The learning rate of the next step: a finite float >= 0 (a schedule may reach 0);
        anything else is refused when it is set, not found in the parameters after a step."""
        return self._lr

    @lr.setter
    def lr(self, value) -> None:
        self._lr = _nonneg("lr", value)

    @property
    def state(self) -> dict:
        """``{parameter name: {slot: array}}``: momentum buffers, moving averages."""
        return self._state

    @state.setter
    def state(self, state: dict) -> None:
        self._state, self._prepared = state, None  # the slots ``prepare`` found are no longer these

    def __repr__(self):
        args = ", ".join(f"{k}={v}" for k, v in {"lr": self.lr, **self.hyper}.items())
        return f"{type(self).__name__}({args})"

    def scalars(self) -> tuple:
        raise NotImplementedError

    def step(self, model) -> None:
        """One update of every parameter of ``model`` from its accumulated gradients."""
        updates = self.prepared(model)
        self.t += 1
        model.backend.write(updates.scalars, self.scalars())
        self.launch(updates, model.backend)

    def prepare(self, model) -> "Updates":
        """The update of every parameter of ``model`` bound once (``Backend.bind``), each gradient
        checked and each slot made before any parameter changes; the kernels read the step's
        scalars from ``Updates.scalars``, a small array on the model's device that ``step`` writes.
        A model whose parameters and gradients each live in one flat buffer (``Sequential.flat``)
        gets flat slots too and one kernel for all of them (the same numbers: it is elementwise)."""
        backend, params, grads = model.backend, model.parameters(), model.gradients()
        if getattr(self, "_loaded", False):
            self._check_state_names(params)
            self._loaded = False
        layers = [layer for layer in getattr(model, "layers", ()) if layer.params]
        with backend.activate():
            work = [(backend.check_array(grads[name], f"gradient {name}"), param, self._slots(name, param, backend))
                    for name, param in params.items()]
            flat = getattr(model, "flat", None)  # (parameters, gradients)
            if flat is not None:
                work = [(flat[1], flat[0], self._flatten_slots(list(params), backend))]
            scalars = backend.zeros(len(self.kernel.scalars))
            views = [scalars[i, ...] for i in range(scalars.size)]  # 0-d views, read at each launch
            runs = [backend.bind(self.kernel, grad, *views, param, *slots) for grad, param, slots in work]
        return Updates(scalars, layers, runs, [a for grad, param, slots in work for a in (grad, param, *slots)])

    def _check_state_names(self, params) -> None:
        """Loaded state for parameters the model lacks, or (after a step) none for some it has, is
        the state of another model: refused before any parameter changes. (State this optimizer
        made itself follows a model whose layers change: new parameters get new slots.)"""
        if not self._state:
            return
        extra = sorted(set(self._state) - set(params))
        missing = sorted(set(params) - set(self._state)) if self.t > 0 else []
        if extra or missing:
            raise ShapeError(f"{type(self).__name__} state is not this model's: "
                             + "; ".join(p for p in (extra and f"it has state for {extra}, which the model lacks",
                                                     missing and f"it has none for the model's {missing}") if p)
                             + "; create a new optimizer for a new model")

    def _flatten_slots(self, names, backend) -> list:
        """Each slot of every parameter in ``names`` moved into one flat array per slot (values
        kept; the state then holds views of it), in that order: the flat slots."""
        xp, flats = backend.xp, []
        for slot in self.slots:
            arrays = [self._state[name][slot] for name in names]
            flat = xp.concatenate([a.ravel() for a in arrays])
            start = 0
            for name, a in zip(names, arrays):
                self._state[name][slot] = flat[start:start + a.size].reshape(a.shape)
                start += a.size
            flats.append(flat)
        return flats

    def prepared(self, model) -> "Updates":
        """``prepare(model)``, kept while the model's arrays and this state stay the same ones
        (``Sequential.generation``), so a step re-checks nothing that cannot have changed."""
        generation = getattr(model, "generation", None)
        key = (id(model), generation, model.backend, self.kernel, self.slots)
        if generation is None or self._prepared is None or self._prepared[0] != key:
            updates = self.prepare(model)
            self._prepared = ((id(model), model.generation, model.backend, self.kernel, self.slots), updates) \
                if generation is not None else None
            return updates
        return self._prepared[1]

    @staticmethod
    def launch(updates, backend) -> None:
        """The bound update kernels of ``prepare`` (with the scalars ``updates.scalars`` holds)."""
        with backend.activate():
            for layer in updates.layers:
                if layer.grads_stale:  # zero_grad() and no backward since
                    layer.grads  # noqa: B018  (reads zeros: fills them)
            for run in updates.runs:
                run()

    def _slots(self, name, param, backend) -> list:
        state = self._state.get(name)
        if state is None:
            state = self._state[name] = {s: backend.zeros(param.shape) for s in self.slots}
        for slot, arr in state.items():
            if arr.shape != param.shape:
                raise ShapeError(f"{type(self).__name__} state {name}.{slot} has shape {arr.shape}, "
                                 f"parameter has {tuple(param.shape)}; create a new optimizer for a new model")
            if not backend.is_own(arr) or arr.dtype != backend.dtype:
                state[slot] = backend.asarray(arr)  # the model moved: its state follows it
        return [state[s] for s in self.slots]

    def state_dict(self) -> dict:
        """Host copy of everything needed to continue exactly: type, hyperparameters, t, state."""
        return {"type": type(self).__name__, "hyper": {"lr": self.lr, **self.hyper}, "t": self.t,
                "state": {n: {s: np.array(to_host(a)) for s, a in st.items()} for n, st in self.state.items()}}

    def load_state_dict(self, d: dict, backend) -> None:
        """Restore ``state_dict()`` output onto ``backend`` (a Backend or a device spec), exactly.
        The saved hyperparameters replace this optimizer's; everything is checked first (kind,
        hyperparameters as the constructor checks them, ``t``, each slot's name, dtype and
        values), so a refused state leaves this optimizer as it was."""
        self._load_checked(_checked_state(d, type(self)), backend)

    def _load_checked(self, saved: dict, backend) -> None:
        if not isinstance(backend, Backend):
            arrays = [a for st in saved["state"].values() for a in st.values()]
            backend = get_backend(backend, arrays[0].dtype if arrays else "float32")
        self.lr, self.hyper, self.t = saved["lr"], saved["hyper"], saved["t"]
        self.state = {n: {s: backend.asarray(a) for s, a in st.items()} for n, st in saved["state"].items()}
        self._loaded = True  # the next prepare checks it is this model's


class SGD(Optimizer):
    """param -= lr * g, with optional momentum, dampening and Nesterov (PyTorch's rules).

    g = grad + weight_decay * param;  buf = momentum * buf + (1 - dampening) * g
    (buf = g on the first step, as in PyTorch);  step = g + momentum * buf (Nesterov) or buf.

    Differs from ``torch.optim.SGD`` only in the default learning rate: 0.1 here,
    1e-3 in PyTorch (pass ``lr`` when porting). Nesterov needs momentum > 0 and
    dampening 0, as in PyTorch.
    """

    def __init__(self, lr=0.1, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        momentum, dampening = _unit("momentum", momentum), _unit("dampening", dampening, closed=True)
        if flag("nesterov", nesterov) and (not momentum or dampening):
            raise InvalidValueError(f"nesterov=True needs momentum > 0 and dampening 0, "
                                    f"got momentum={momentum}, dampening={dampening}")
        super().__init__(lr, momentum=momentum, dampening=dampening, nesterov=flag("nesterov", nesterov),
                         weight_decay=_nonneg("weight_decay", weight_decay))

    @property
    def kernel(self):
        return updates.sgd_momentum if self.hyper["momentum"] else updates.sgd

    @property
    def slots(self):
        return ("buf",) if self.hyper["momentum"] else ()

    def scalars(self):
        h = self.hyper
        if not h["momentum"]:
            return (self.lr, h["weight_decay"])
        return updates.sgd_momentum_scalars(self.lr, h["momentum"], h.get("dampening", 0.0), h["weight_decay"],
                                            h["nesterov"], self.t)


class RMSprop(Optimizer):
    """sq = alpha * sq + (1 - alpha) g^2;  param -= lr * g / (sqrt(sq) + eps)  (PyTorch's rules).

    ``centered``: also avg = alpha * avg + (1 - alpha) g, and sqrt(sq - avg^2) in the
    denominator. ``momentum``: buf = momentum * buf + g / denominator; param -= lr * buf.
    ``weight_decay`` is L2 added to the gradient, g = grad + weight_decay * param.

    Differs from ``torch.optim.RMSprop`` only in the default learning rate: 1e-3
    here, 1e-2 in PyTorch (pass ``lr`` when porting).
    """

    def __init__(self, lr=1e-3, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
        super().__init__(lr, alpha=_unit("alpha", alpha), eps=_positive("eps", eps),
                         weight_decay=_nonneg("weight_decay", weight_decay),
                         momentum=_unit("momentum", momentum), centered=flag("centered", centered))

    @property
    def kernel(self):
        h = self.hyper
        return {(False, False): updates.rmsprop, (True, False): updates.rmsprop_centered,
                (False, True): updates.rmsprop_momentum,
                (True, True): updates.rmsprop_centered_momentum}[h.get("centered", False), bool(h.get("momentum"))]

    nonnegative_slots = ("sq",)

    @property
    def slots(self):
        h = self.hyper
        return ("sq",) + ("avg",) * bool(h.get("centered")) + ("buf",) * bool(h.get("momentum"))

    def scalars(self):
        h = self.hyper
        return updates.rmsprop_scalars(self.lr, h["alpha"], h["eps"], h["weight_decay"], h.get("momentum", 0.0))


class Adam(Optimizer):
    """Adam with bias correction; by default ``weight_decay`` is AdamW's decoupled decay.

    g = grad (+ weight_decay * param when not decoupled);
    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2  (``amsgrad``: vmax = max(vmax, v), used for v);
    param = (1 - lr wd) param - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), wd only if decoupled.

    Differs from ``torch.optim.Adam``: with ``weight_decay > 0`` this is
    ``torch.optim.AdamW`` (decay applied to the parameter), because
    ``decoupled_weight_decay`` defaults to True here and to False in PyTorch. Pass
    ``decoupled_weight_decay=False`` for PyTorch's ``Adam(weight_decay=...)``, the
    coupled L2 penalty added to the gradient. The learning rate default (1e-3) is
    PyTorch's.
    """

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                 decoupled_weight_decay=True):
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise InvalidValueError(f"betas must be a pair (beta1, beta2), got {betas!r}") from None
        super().__init__(lr, beta1=_unit("beta1", b1), beta2=_unit("beta2", b2),
                         eps=_positive("eps", eps), weight_decay=_nonneg("weight_decay", weight_decay),
                         amsgrad=flag("amsgrad", amsgrad),
                         decoupled_weight_decay=flag("decoupled_weight_decay", decoupled_weight_decay))

    @property
    def kernel(self):
        return updates.adam_amsgrad if self.hyper.get("amsgrad") else updates.adam

    nonnegative_slots = ("v", "vmax")

    @property
    def slots(self):
        return ("m", "v", "vmax") if self.hyper.get("amsgrad") else ("m", "v")

    def scalars(self):
        h = self.hyper
        return updates.adam_scalars(self.lr, h["beta1"], h["beta2"], h["eps"], h["weight_decay"], self.t,
                                    decoupled=h.get("decoupled_weight_decay", True))


def AdamW(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, amsgrad=False):
    """Adam with decoupled weight decay (default 0.01, as in PyTorch)."""
    return Adam(lr, betas, eps, weight_decay, amsgrad=amsgrad, decoupled_weight_decay=True)


OPTIMIZERS = {
    "sgd": SGD, "momentum": lambda **kw: SGD(**{"momentum": 0.9, **kw}),
    "nesterov": lambda **kw: SGD(**{"momentum": 0.9, "nesterov": True, **kw}),
    "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW,
}


def get_optimizer(opt="adam", **kw) -> Optimizer:
    """An optimizer by name (keyword arguments go to its constructor), or an instance unchanged."""
    if isinstance(opt, Optimizer):
        return opt
    try:
        factory = OPTIMIZERS[str(opt).lower()]
    except KeyError:
        raise InvalidValueError(f"unknown optimizer {opt!r}; choose one of {sorted(OPTIMIZERS)}") from None
    _check_keywords(str(opt).lower(), {"momentum": SGD, "nesterov": SGD}.get(str(opt).lower(), factory), kw)
    return factory(**kw)


def _check_keywords(name, make, kw) -> None:
    """Refuse keyword arguments the optimizer made by ``make`` does not take, naming those it does."""
    accepted = list(inspect.signature(make).parameters)
    unknown = sorted(set(kw) - set(accepted))
    if unknown:
        raise InvalidValueError(f"optimizer {name!r} takes {accepted}, got {unknown}")


def optimizer_from_state(d: dict, backend) -> Optimizer:
    """Rebuild an optimizer from ``state_dict()`` output, its state placed on ``backend``."""
    kinds = {cls.__name__: cls for cls in (SGD, RMSprop, Adam)}
    kind = d.get("type") if isinstance(d, dict) else None
    if kind not in kinds:
        if not isinstance(d, dict):
            raise InvalidValueError(f"optimizer state must be a dict (Optimizer.state_dict()), "
                                    f"got a {type(d).__name__}")
        raise InvalidValueError(f"unknown optimizer type {kind!r} in saved state")
    saved = _checked_state(d, kinds[kind])
    opt = _construct(kinds[kind], saved["hyper_args"])
    opt._load_checked(saved, backend)
    return opt


def _construct(cls, hyper: dict) -> Optimizer:
    """``cls(**hyper)`` with saved hyperparameters; Adam's are saved as beta1 and beta2."""
    hyper = dict(hyper)
    if cls is Adam and ("beta1" in hyper or "beta2" in hyper):
        hyper["betas"] = (hyper.pop("beta1", None), hyper.pop("beta2", None))
    _check_keywords(cls.__name__, cls, hyper)
    return cls(**hyper)


def _checked_state(d, cls) -> dict:
    """``state_dict()`` output for an optimizer of class ``cls``, every part checked (nothing
    changed): {"lr", "hyper" (as a ``cls`` built from them keeps them), "hyper_args", "t", "state"}."""
    name = cls.__name__
    if not isinstance(d, dict):
        raise InvalidValueError(f"optimizer state must be a dict (Optimizer.state_dict()), got a {type(d).__name__}")
    if d.get("type") != name:
        raise InvalidValueError(f"state is for {d.get('type')}, this optimizer is {name}")
    missing = [k for k in ("hyper", "t", "state") if k not in d]
    if missing:
        raise InvalidValueError(f"optimizer state lacks {missing}; expected Optimizer.state_dict() output")
    if not isinstance(d["hyper"], dict) or "lr" not in d["hyper"]:
        raise InvalidValueError(f"optimizer state: hyper must be a dict with lr, got {d['hyper']!r:.80}")
    fresh = _construct(cls, d["hyper"])  # the constructor's checks, by name
    t = integer("optimizer state t (steps taken)", d["t"], minimum=0)
    state = d["state"]
    if not isinstance(state, dict) or not all(isinstance(st, dict) for st in state.values()):
        raise InvalidValueError(f"optimizer state: state must be {{parameter: {{slot: array}}}}, got {state!r:.80}")
    for pname, st in state.items():  # SGD's slots depend on its momentum
        if set(st) != set(fresh.slots):
            raise InvalidValueError(f"saved state of {pname} has slots {sorted(st)}, "
                                    f"{name} keeps {list(fresh.slots)}")
        for slot, a in st.items():
            _check_slot(f"{name} state {pname}.{slot}", to_host(a), slot in fresh.nonnegative_slots)
    return {"lr": fresh.lr, "hyper": fresh.hyper, "hyper_args": d["hyper"], "t": t, "state": state}


def _check_slot(what, a, nonnegative) -> None:
    """A saved slot: a float array of finite values (>= 0 for sums of squares)."""
    kind = getattr(getattr(a, "dtype", None), "kind", None)
    if kind != "f":
        raise DTypeError(f"{what}: expected a float array, got {getattr(a, 'dtype', type(a).__name__)}")
    if not np.isfinite(a).all():
        raise NumericalError(f"{what} holds NaN/Inf; this state cannot be continued from")
    if nonnegative and a.size and a.min() < 0:
        raise InvalidValueError(f"{what} holds negative values (minimum {float(a.min()):g}); it is a moving "
                                f"average of squares, so the state is damaged")


def _positive(name, x) -> float:
    return number(name, x, low=0, low_open=True)


def _nonneg(name, x) -> float:
    return number(name, x, low=0)


def _unit(name, x, closed=False) -> float:
    """In [0, 1), or [0, 1] when ``closed``."""
    return number(name, x, low=0, high=1, high_open=not closed)
