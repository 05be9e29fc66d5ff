"""An optimizer's arguments checked: the learning rate and hyperparameters in their ranges, and
PyTorch's ways of calling one (its parameters first, its options at their defaults only).
"""
from __future__ import annotations

from collections.abc import Iterable

from .._checks import number
from ..errors import InvalidValueError
from ..nn.windows import torch_options as check_options
from .state import TORCH_OPTIONS


def refuse_parameters(name, args, kwargs) -> None:
    """Refuse parameters given first, as to PyTorch's optimizers (``SGD(model.parameters(), lr=0.1)``): a
    gpubp optimizer steps a whole model, and its first argument is the learning rate."""
    first = args[0] if args else None  # parameters: any collection (dict_values too), an iterator, a model
    if isinstance(first, Iterable) and not isinstance(first, (str, bytes)) and getattr(first, "ndim", 1) != 0 \
            or hasattr(first, "parameters"):
        lr = kwargs.get("lr", args[1] if len(args) > 1 else "...")
        raise InvalidValueError(f"{name} takes no parameters (PyTorch's first argument): make it as {name}(lr={lr}), "
                                f"then fit(model, X, y, optimizer=it) or it.step(model), which updates every "
                                f"parameter of the model")


def torch_options(optimizer, options) -> None:
    """PyTorch's arguments of an optimizer (``Optimizer.TORCH_OPTIONS``) at their defaults taken, others refused."""
    check_options(optimizer, options, TORCH_OPTIONS)


def positive(name, x) -> float:
    return number(name, x, low=0, low_open=True)


def nonnegative(name, x) -> float:
    return number(name, x, low=0)


def unit(name, x, closed=False) -> float:
    """In [0, 1), or [0, 1] when ``closed``."""
    return number(name, x, low=0, high=1, high_open=not closed)
