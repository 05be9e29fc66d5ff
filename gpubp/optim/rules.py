"""The update rules (PyTorch's; ``gpubp/backend/kernels/updates.py`` holds their kernels), and an
optimizer by name (``get_optimizer``) or from saved state (``optimizer_from_state``)."""
from __future__ import annotations

from .._checks import flag, named
from ..backend.kernels import updates
from ..errors import InvalidValueError
from .arguments import nonnegative, positive, refuse_parameters, torch_options, unit
from .base import Optimizer
from .state import check_keywords, checked_state, saved_dict


class SGD(Optimizer):
    """param -= lr * g, with optional momentum, dampening and Nesterov (PyTorch's rules).

    g = grad + weight_decay * param;  buf = momentum * buf + (1 - dampening) * g
    (buf = g on the first step, as in PyTorch);  step = g + momentum * buf (Nesterov) or buf.

    Differs from ``torch.optim.SGD`` only in the default learning rate: 0.1 here,
    1e-3 in PyTorch (pass ``lr`` when porting). Nesterov needs momentum > 0 and
    dampening 0, as in PyTorch.
    """

    def __init__(self, lr=0.1, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, **options):
        torch_options("SGD", options)
        momentum, dampening = unit("momentum", momentum), unit("dampening", dampening, closed=True)
        nesterov = flag("nesterov", nesterov)
        if nesterov and (not momentum or dampening):
            raise InvalidValueError(f"nesterov=True needs momentum > 0 and dampening 0, "
                                    f"got momentum={momentum}, dampening={dampening}")
        super().__init__(lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                         weight_decay=nonnegative("weight_decay", weight_decay))

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

    def __init__(self, lr=1e-3, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False, **options):
        torch_options("RMSprop", options)
        super().__init__(lr, alpha=unit("alpha", alpha), eps=positive("eps", eps),
                         weight_decay=nonnegative("weight_decay", weight_decay),
                         momentum=unit("momentum", momentum), centered=flag("centered", centered))

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
                 decoupled_weight_decay=True, **options):
        torch_options("Adam", options)
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise InvalidValueError(f"betas must be a pair (beta1, beta2), got {betas!r}") from None
        super().__init__(lr, beta1=unit("beta1", b1), beta2=unit("beta2", b2),
                         eps=positive("eps", eps), weight_decay=nonnegative("weight_decay", weight_decay),
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


def _adamw(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, amsgrad=False, decoupled_weight_decay=True,
           **options):
    """AdamW's arguments (its signature, which ``get_optimizer`` checks keywords against)."""
    if flag("decoupled_weight_decay", decoupled_weight_decay) is not True:
        raise InvalidValueError("AdamW's weight decay is decoupled (decoupled_weight_decay=True); for the L2 penalty "
                                "added to the gradient use Adam(weight_decay=..., decoupled_weight_decay=False)")
    return Adam(lr, betas, eps, weight_decay, amsgrad=amsgrad, decoupled_weight_decay=True, **options)


def AdamW(*args, **kwargs):
    """Adam with decoupled weight decay (default 0.01, as in PyTorch): AdamW(lr=1e-3, betas=(0.9, 0.999),
    eps=1e-8, weight_decay=0.01, amsgrad=False)."""
    refuse_parameters("AdamW", args, kwargs)
    return _adamw(*args, **kwargs)


OPTIMIZERS = {
    "sgd": SGD, "momentum": lambda **kw: SGD(**{"momentum": 0.9, **kw}),
    "nesterov": lambda **kw: SGD(**{"momentum": 0.9, "nesterov": True, **kw}),
    "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW,
}


def get_optimizer(opt="adam", **kw) -> Optimizer:
    """An optimizer by name (keyword arguments go to its constructor), or an instance unchanged."""
    if isinstance(opt, Optimizer):
        if kw:  # they would be ignored: the instance keeps its own
            raise InvalidValueError(f"get_optimizer: got {opt!r} and the arguments {sorted(kw)}, which an instance "
                                    f"does not take; set them on it (optimizer.lr = ..., optimizer.hyper[...] = ...) "
                                    f"or give the optimizer by name")
        return opt
    if isinstance(opt, type) and issubclass(opt, Optimizer):
        raise InvalidValueError(f"optimizer: got the class {opt.__name__}; pass an instance, {opt.__name__}()")
    name = str(opt).lower()
    try:
        factory = OPTIMIZERS[name]
    except KeyError:
        raise InvalidValueError(f"unknown optimizer {named(opt)}; choose one of {sorted(OPTIMIZERS)} or give an "
                                f"Optimizer") from None
    check_keywords(name, {"momentum": SGD, "nesterov": SGD, "adamw": _adamw}.get(name, factory), kw)  # the presets' own
    return factory(**kw)


def optimizer_from_state(d: dict, backend=None) -> Optimizer:
    """Rebuild an optimizer from ``state_dict()`` output, its state placed on ``backend``."""
    kinds = {cls.__name__: cls for cls in (SGD, RMSprop, Adam)}
    kind = saved_dict(d).get("type")
    if not isinstance(kind, str) or kind not in kinds:
        raise InvalidValueError(f"unknown optimizer type {kind!r:.60} in saved state; known: {sorted(kinds)}")
    saved = checked_state(d, kinds[kind])
    opt = saved["optimizer"]  # built from the saved hyperparameters by the check
    opt._load_checked(saved, backend)
    return opt
