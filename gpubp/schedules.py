"""Learning-rate schedules: ``schedule(epoch) -> lr``, epochs counted from 0."""
from __future__ import annotations

import math


class Constant:
    """lr(epoch) = lr."""

    def __init__(self, lr):
        self.lr = float(lr)

    def __call__(self, epoch):
        return self.lr


class StepDecay:
    """lr(epoch) = lr * gamma ** (epoch // step_size)."""

    def __init__(self, lr, step_size, gamma=0.1):
        if step_size < 1:
            raise ValueError(f"step_size must be >= 1, got {step_size}")
        self.lr, self.step_size, self.gamma = float(lr), int(step_size), float(gamma)

    def __call__(self, epoch):
        return self.lr * self.gamma ** (epoch // self.step_size)


class Cosine:
    """lr(epoch) = min_lr + (lr - min_lr) * (1 + cos(pi * epoch / total_epochs)) / 2."""

    def __init__(self, lr, total_epochs, min_lr=0.0):
        if total_epochs < 1:
            raise ValueError(f"total_epochs must be >= 1, got {total_epochs}")
        self.lr, self.total, self.min_lr = float(lr), int(total_epochs), float(min_lr)

    def __call__(self, epoch):
        progress = min(epoch, self.total) / self.total
        return self.min_lr + (self.lr - self.min_lr) * (1 + math.cos(math.pi * progress)) / 2


def get_schedule(name, lr, epochs):
    """A schedule by name: "constant", "step" (x0.1 every third of the run) or "cosine"."""
    if callable(name):
        return name
    if name in (None, "constant"):
        return Constant(lr)
    if name == "step":
        return StepDecay(lr, max(1, epochs // 3))
    if name == "cosine":
        return Cosine(lr, epochs)
    raise ValueError(f"unknown schedule {name!r}; choose constant, step or cosine")
