"""Saved optimizer state (``Optimizer.state_dict()`` output) read back checked: its kind, its
hyperparameters through the constructor's own checks, ``t`` and every slot, before anything changes."""
from __future__ import annotations

import inspect

import numpy as np

from .._checks import integer, number
from .._compat import to_host
from ..errors import DTypeError, InvalidValueError, NumericalError


TORCH_OPTIONS = {  # PyTorch's optimizer arguments, taken at their defaults only (nn.windows.torch_options)
    "foreach": ((None,), "each update is one fused kernel per parameter, or one for a flat model (foreach=None)"),
    "fused": ((None,), "its updates are fused kernels already (fused=None)"),
    "maximize": ((False,), "it minimises the loss (maximize=False); minimise its negative"),
    "capturable": ((False,), "fit's cuda_graph=True captures the update in the step's graph (capturable=False)"),
    "differentiable": ((False,), "its updates are not differentiated (differentiable=False)")}


def check_keywords(name, make, kw) -> None:
    """Refuse keyword arguments the optimizer made by ``make`` does not take, naming those it does (its
    ``**options`` are PyTorch's arguments, which it checks itself)."""
    parameters = inspect.signature(make).parameters.values()
    accepted = [p.name for p in parameters if p.kind is not p.VAR_KEYWORD]
    unknown = sorted(set(kw) - set(accepted) - (set(TORCH_OPTIONS) if len(accepted) < len(parameters) else set()))
    if unknown:
        raise InvalidValueError(f"optimizer {name!r} takes {accepted}, got {unknown}")


def construct(cls, hyper: dict):
    """``cls(**hyper)`` from saved hyperparameters (Adam's betas are saved as beta1 and beta2)."""
    hyper = dict(hyper)
    if "betas" in inspect.signature(cls).parameters and ("beta1" in hyper or "beta2" in hyper):
        hyper["betas"] = (hyper.pop("beta1", None), hyper.pop("beta2", None))
    check_keywords(cls.__name__, cls, hyper)
    return cls(**hyper)


def saved_dict(d) -> dict:
    """``d`` itself when it is a dict (what ``Optimizer.state_dict()`` gives), else refused."""
    if not isinstance(d, dict):
        raise InvalidValueError(f"optimizer state must be a dict (Optimizer.state_dict()), got a {type(d).__name__}")
    if "param_groups" in d and "type" not in d:
        raise InvalidValueError("optimizer state: this is a PyTorch optimizer's state_dict() (param_groups, state by "
                                "parameter number), not a gpubp Optimizer.state_dict(); make the gpubp optimizer with "
                                "the same hyperparameters instead (its moments start afresh)")
    return d


def slots_by_parameter(state, what="optimizer state") -> dict:
    """``state`` when it is ``{parameter name: {slot: array}}``, else refused naming ``what``."""
    if not isinstance(state, dict) or not all(isinstance(st, dict) for st in state.values()):
        raise InvalidValueError(f"{what} must be {{parameter name: {{slot: array}}}}, got {state!r:.80}")
    return state


class Hyperparameters(dict):
    """An optimizer's hyperparameters (``optimizer.hyper``), checked whenever one is set, later as
    at construction, by building an optimizer of the same class from them: ``hyper["beta1"] = 1.5``
    is refused (as ``Adam(betas=(1.5, 0.999))`` is), never stepped with. None can be removed.
    ``changed()`` (the optimizer's) is called after a change is taken."""

    def __init__(self, cls, items, changed=None):
        super().__init__(items)
        self._cls, self._changed = cls, changed

    def __setitem__(self, key, value):
        self.update({key: value})

    def update(self, *args, **kw):
        new = dict(*args, **kw)
        unknown = sorted(map(str, set(new) - set(self)))
        if unknown:
            raise InvalidValueError(f"{self._cls.__name__}.hyper has no {unknown}; its hyperparameters are "
                                    f"{sorted(self)} (and lr: optimizer.lr)")
        try:
            fresh = construct(self._cls, {**self, **new})  # the constructor's checks, by name
        except InvalidValueError as exc:
            raise InvalidValueError(f"{self._cls.__name__}.hyper: {exc}") from None
        dict.update(self, fresh.hyper)
        if self._changed is not None:
            self._changed()

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    def __ior__(self, other):
        self.update(other)
        return self

    def _removes(self, *args):
        raise InvalidValueError(f"{self._cls.__name__} hyperparameters cannot be removed (each has a value: set it)")

    __delitem__ = pop = popitem = clear = _removes

    def __reduce__(self):  # copies and pickles are plain dicts: the optimizer wraps them again
        return dict, (dict(self),)


class SlotState(dict):
    """``{parameter name: {slot: array}}``, and each ``{slot: array}`` in it, as dicts that call
    ``changed()`` whenever an entry is set or removed. An optimizer binds its update to the slot
    arrays once; a slot replaced by hand (``optimizer.state["0.W"]["m"] = a``) makes it bind
    anew at the next step, rather than be ignored while the old array is stepped."""

    def __init__(self, items, changed, inner=False):
        super().__init__()
        self._changed, self._inner = changed, inner
        dict.update(self, {k: self._kept(v) for k, v in dict(items).items()})

    def _kept(self, value):
        """A parameter's slots (a dict) are kept as a SlotState that reports to the same optimizer."""
        if self._inner:
            return value
        if not isinstance(value, dict):
            raise InvalidValueError(f"optimizer state: a parameter's state must be {{slot: array}}, got {value!r:.80}")
        return SlotState(value, self._changed, inner=True)

    def __setitem__(self, key, value):
        if dict.get(self, key) is value:  # ``state[name][slot] *= 0`` puts the same array back
            return
        self._changed()
        dict.__setitem__(self, key, self._kept(value))

    def __delitem__(self, key):
        self._changed()
        dict.__delitem__(self, key)

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args, **kw):
        for key, value in dict(*args, **kw).items():
            self[key] = value

    def __ior__(self, other):
        self.update(other)
        return self

    def pop(self, *args):
        self._changed()
        return dict.pop(self, *args)

    def popitem(self):
        self._changed()
        return dict.popitem(self)

    def clear(self):
        self._changed()
        dict.clear(self)

    def __reduce__(self):  # copies and pickles are plain dicts: the optimizer wraps them again
        return dict, (dict(self),)


def checked_state(d, cls) -> dict:
    """``state_dict()`` output for an optimizer of class ``cls``, every part checked (nothing
    changed): {"lr", "hyper" (as a ``cls`` built from them keeps them), "optimizer" (that fresh
    ``cls``, its state not loaded yet), "t", "state"}."""
    name = cls.__name__
    kind = saved_dict(d).get("type")
    if not isinstance(kind, str) or kind != name:
        raise InvalidValueError(f"state is for {kind!r:.60}, this optimizer is {name}")
    missing = [k for k in ("hyper", "t", "state") if k not in d]
    if missing:
        raise InvalidValueError(f"optimizer state lacks {missing}; expected Optimizer.state_dict() output")
    if not isinstance(d["hyper"], dict) or "lr" not in d["hyper"]:
        raise InvalidValueError(f"optimizer state: hyper must be a dict with lr, got {d['hyper']!r:.80}")
    lr = number("optimizer state: hyper lr", d["hyper"]["lr"], low=0)  # 0 as optimizer.lr takes (a schedule's end)
    fresh = construct(cls, {**d["hyper"], "lr": lr or 1.0})  # the constructor's other checks, by name
    fresh.lr = lr
    t = integer("optimizer state t (steps taken)", d["t"], minimum=0)
    state = slots_by_parameter(d["state"], "optimizer state: state")
    host = {}
    for pname, st in state.items():  # SGD's slots depend on its momentum
        if st and set(st) != set(fresh.slots):  # {}: nothing made yet (SGD's momentum set from 0)
            raise InvalidValueError(f"saved state of {pname} has slots {sorted(st)}, "
                                    f"{name} keeps {list(fresh.slots)}")
        host[pname] = {slot: to_host(a) for slot, a in st.items()}
        for slot, a in host[pname].items():
            check_slot(f"{name} state {pname}.{slot}", a, slot in fresh.nonnegative_slots)
    return {"lr": fresh.lr, "hyper": fresh.hyper, "optimizer": fresh, "t": t, "state": host}


def check_slot(what, a, nonnegative) -> None:
    """A saved slot: a float array of finite values (>= 0 for sums of squares)."""
    kind = getattr(getattr(a, "dtype", None), "kind", None)
    if kind != "f":
        raise DTypeError(f"{what}: expected a float array, got {getattr(a, 'dtype', type(a).__name__)}")
    if not np.isfinite(a).all():
        raise NumericalError(f"{what} holds NaN/Inf; this state cannot be continued from")
    if nonnegative and a.size and a.min() < 0:
        raise InvalidValueError(f"{what} holds negative values (minimum {float(a.min()):g}); it is a moving "
                                f"average of squares, so the state is damaged")
