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

from typing import NamedTuple

import numpy as np

from ._compat import to_host
from .backend import Backend, get_backend
from .backend.kernels import updates
from .errors import InvalidValueError, ShapeError


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

    def __init__(self, lr, **hyper):
        self.lr = _positive("lr", lr)
        self.hyper = hyper
        self.t, self._prepared = 0, None
        self.state: dict = {}

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
        """Restore ``state_dict()`` output onto ``backend`` (a Backend or a device spec), exactly."""
        if d.get("type") != type(self).__name__:
            raise InvalidValueError(f"state is for {d.get('type')}, this optimizer is {type(self).__name__}")
        before = self.lr, dict(self.hyper)
        self.lr = float(d["hyper"]["lr"])
        self.hyper.update({k: v for k, v in d["hyper"].items() if k != "lr"})
        for name, st in d["state"].items():  # SGD's slots depend on its momentum
            if set(st) != set(self.slots):
                self.lr, self.hyper = before
                raise InvalidValueError(f"saved state of {name} has slots {sorted(st)}, "
                                    f"{type(self).__name__} keeps {list(self.slots)}")
        if not isinstance(backend, Backend):
            arrays = [a for st in d["state"].values() for a in st.values()]
            backend = get_backend(backend, arrays[0].dtype if arrays else "float32")
        self.t = int(d["t"])
        self.state = {n: {s: backend.asarray(a) for s, a in st.items()} for n, st in d["state"].items()}


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
        if nesterov and (not momentum or dampening):
            raise InvalidValueError(f"nesterov=True needs momentum > 0 and dampening 0, "
                                    f"got momentum={momentum}, dampening={dampening}")
        super().__init__(lr, momentum=momentum, dampening=dampening, nesterov=bool(nesterov),
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
                         momentum=_unit("momentum", momentum), centered=bool(centered))

    @property
    def kernel(self):
        h = self.hyper
        return {(False, False): updates.rmsprop, (True, False): updates.rmsprop_centered,
                (False, True): updates.rmsprop_momentum,
                (True, True): updates.rmsprop_centered_momentum}[h.get("centered", False), bool(h.get("momentum"))]

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
                         amsgrad=bool(amsgrad), decoupled_weight_decay=bool(decoupled_weight_decay))

    @property
    def kernel(self):
        return updates.adam_amsgrad if self.hyper.get("amsgrad") else updates.adam

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
    return factory(**kw)


def optimizer_from_state(d: dict, backend) -> Optimizer:
    """Rebuild an optimizer from ``state_dict()`` output, its state placed on ``backend``."""
    kinds = {cls.__name__: cls for cls in (SGD, RMSprop, Adam)}
    if d.get("type") not in kinds:
        raise InvalidValueError(f"unknown optimizer type {d.get('type')!r} in saved state")
    hyper = dict(d["hyper"])
    if d["type"] == "Adam":
        hyper["betas"] = (hyper.pop("beta1"), hyper.pop("beta2"))
    opt = kinds[d["type"]](**hyper)
    opt.load_state_dict(d, backend)
    return opt


def _number(name, x) -> float:
    """``float(x)``, refusing what is not a finite number (NaN, inf, strings) by name."""
    try:
        value = float(x)
    except (TypeError, ValueError):
        raise InvalidValueError(f"{name} must be a number, got {x!r}") from None
    if not np.isfinite(value):
        raise InvalidValueError(f"{name} must be finite, got {x}")
    return value


def _positive(name, x):
    value = _number(name, x)
    if not value > 0:
        raise InvalidValueError(f"{name} must be > 0, got {x}")
    return value


def _nonneg(name, x):
    value = _number(name, x)
    if not value >= 0:
        raise InvalidValueError(f"{name} must be >= 0, got {x}")
    return value


def _unit(name, x, closed=False):
    value = _number(name, x)
    if not (0.0 <= value <= 1.0 if closed else 0.0 <= value < 1.0):
        raise InvalidValueError(f"{name} must be in [0, 1{']' if closed else ')'}, got {x}")
    return value
