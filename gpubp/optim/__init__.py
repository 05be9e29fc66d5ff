"""Optimizers: each step is one fused registry kernel for all of a model's parameters when they
lie in one flat buffer (``Sequential.flat``), else one per parameter.

``opt.step(model)`` updates every ``model.parameters()[name]`` in place from
``model.gradients()[name]``. State (momentum buffers, moving averages) is
created lazily on the model's backend; if the model moves to another backend,
the state moves with it on the next step, values kept (a model of other shapes
is refused with a ShapeError before any parameter changes). ``opt.lr`` is a
float >= 0, checked when set, that a schedule may change between steps. Update rules follow
``torch.optim`` (see ``gpubp/backend/kernels/updates.py``); the defaults that differ
are stated in each class. ``scalars()`` derives the kernel's scalars (``1 - beta``,
``lr / (1 - beta1^t)``...) from the hyperparameters on the host in float64; the
backend rounds each once to the model's dtype.

Modules: ``base.py`` (Optimizer: the update bound once per model, launched per step),
``slots.py`` (the slots kept per parameter: checked against the model, made, moved, flattened),
``rules.py`` (SGD, RMSprop, Adam, AdamW; an optimizer by name or from saved state),
``arguments.py`` (their arguments checked),
``state.py`` (saved state read back checked: nothing changes until all of it is).
"""
from .base import Optimizer, Updates
from .rules import OPTIMIZERS, SGD, Adam, AdamW, RMSprop, get_optimizer, optimizer_from_state

__all__ = ["Optimizer", "Updates", "OPTIMIZERS", "SGD", "Adam", "AdamW", "RMSprop", "get_optimizer",
           "optimizer_from_state"]
