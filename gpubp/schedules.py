"""Learning-rate schedules: ``schedule(epoch) -> lr``, epochs counted from 0.

``fit()`` sets ``optimizer.lr = schedule(epoch)`` before each epoch. The
formulas are PyTorch's (``StepLR``, ``CosineAnnealingLR`` with ``T_max =
total_epochs``), evaluated in closed form so that resuming at any epoch gives
the same rate.
"""
from __future__ import annotations

import inspect
import math

from ._checks import Checked, integer, number
from .errors import InvalidValueError


class Schedule:
    """Base class: ``lr`` is the rate at epoch 0; subclasses implement ``rate(epoch)``. Their
    settings set later are checked as when the schedule is made (``Checked``)."""

    lr = Checked(number, low=0)

    def __init__(self, lr):
        if hasattr(lr, "step") and hasattr(lr, "state_dict"):  # PyTorch's scheduler(optimizer, ...)
            raise InvalidValueError(f"{type(self).__name__} takes the learning rate of epoch 0 first, not the optimizer "
                                    f"(PyTorch's first argument): {type(self).__name__}(optimizer.lr, ...), then "
                                    f"fit(..., optimizer=optimizer, schedule=it) sets optimizer.lr each epoch")
        self.lr = lr

    def __call__(self, epoch) -> float:
        return self.rate(integer("epoch", epoch, minimum=0))

    def __repr__(self):
        args = ", ".join(f"{k}={v}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"

    def rate(self, epoch: int) -> float:
        raise NotImplementedError(f"{type(self).__name__} defines no rate(epoch): a Schedule of one's own returns the "
                                  f"learning rate of an epoch (counted from 0) from it")


class Constant(Schedule):
    """lr(epoch) = lr."""

    def rate(self, epoch):
        return self.lr


class StepDecay(Schedule):
    """lr(epoch) = lr * gamma ** (epoch // step_size)   (PyTorch ``StepLR``)."""

    step_size = Checked(integer, minimum=1)
    gamma = Checked(number, low=0, high=1, low_open=True)

    def __init__(self, lr, step_size, gamma=0.1):
        super().__init__(lr)
        self.step_size, self.gamma = step_size, gamma

    def rate(self, epoch):
        # beyond 2^64 decays the power is exactly 0 (gamma < 1) or 1, and a float power overflows past 1e308
        return self.lr * self.gamma ** min(epoch // self.step_size, 1 << 64)


class Cosine(Schedule):
    """lr(epoch) = min_lr + (lr - min_lr) * (1 + cos(pi * epoch / total_epochs)) / 2.

    Epochs past ``total_epochs`` stay at ``min_lr`` (PyTorch's ``CosineAnnealingLR``
    would rise again).
    """

    total_epochs = Checked(integer, minimum=1)
    min_lr = Checked(number, low=0)

    def __init__(self, lr, total_epochs=None, min_lr=0.0, T_max=None, eta_min=None):
        super().__init__(lr)
        if (total_epochs is None) == (T_max is None) or eta_min is not None and min_lr != 0.0:
            raise InvalidValueError(f"Cosine takes total_epochs (PyTorch's T_max) once and min_lr (PyTorch's eta_min) "
                                    f"at most once, got total_epochs={total_epochs!r}, T_max={T_max!r}, "
                                    f"min_lr={min_lr!r}, eta_min={eta_min!r}")
        self.total_epochs = T_max if total_epochs is None else total_epochs
        self.min_lr = min_lr if eta_min is None else eta_min

    def __setattr__(self, name, value):
        """``lr`` and ``min_lr`` set later keep min_lr <= lr, as when made (a min_lr above lr makes
        the rate rise); a refused one leaves the schedule as it was. Lower both min_lr first."""
        before = self.__dict__.get(name)
        super().__setattr__(name, value)  # the setting's own check (``Checked``)
        lr, min_lr = self.__dict__.get("lr"), self.__dict__.get("min_lr")
        if name in ("lr", "min_lr") and lr is not None and min_lr is not None and min_lr > lr:
            self.__dict__[name] = before
            if before is None:
                del self.__dict__[name]
            if name == "min_lr":
                raise InvalidValueError(f"Cosine min_lr must be in [0, lr] = [0, {lr:g}], got {value!r}")
            raise InvalidValueError(f"Cosine lr must be >= min_lr = {min_lr:g}, got {value!r}; lower min_lr first")

    def rate(self, epoch):
        progress = min(epoch, self.total_epochs) / self.total_epochs
        # halved before the product (exact, the same number), which then stays finite for any finite lr
        return self.min_lr + (self.lr - self.min_lr) * ((1 + math.cos(math.pi * progress)) / 2)


SCHEDULES = ("constant", "step", "cosine")


def get_schedule(name, lr, epochs):
    """A schedule by name, or a callable ``epoch -> lr`` unchanged.

    "constant" (also ``None``); "step": times 0.1 after each third of the run
    (``step_size = max(1, epochs // 3)``); "cosine": from ``lr`` to 0 over ``epochs``.
    """
    if callable(name):
        return _takes_epoch(name)
    if name is not None and not isinstance(name, str):
        raise InvalidValueError(f"schedule must be one of {', '.join(SCHEDULES)} or a callable epoch -> lr, "
                                f"got a {type(name).__name__}")
    key = "constant" if name is None else name.lower()
    if key not in SCHEDULES:
        raise InvalidValueError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
    if key == "constant":
        return Constant(lr)
    epochs = integer("epochs", epochs, minimum=1)
    if key == "step":
        return StepDecay(lr, max(1, epochs // 3))
    return Cosine(lr, epochs)



def _takes_epoch(schedule):
    """``schedule`` when it can be called with one epoch (refused before training, not at the
    first epoch with a TypeError of its own)."""
    try:
        inspect.signature(schedule).bind(0)
    except TypeError:
        raise InvalidValueError(f"schedule must be a callable epoch -> lr, taking one argument (the epoch); "
                                f"{schedule!r:.80} takes {inspect.signature(schedule)}") from None
    except ValueError:  # no signature to read (a builtin): called as it is
        pass
    return schedule
