"""Models: ``Sequential`` (layers run forward in order and backward in reverse) and ``mlp``.

Modules: ``sequential.py`` (Sequential: running the layers, device, config; ``mlp``),
``modes.py`` (its train and eval modes), ``state.py`` (its arrays by name "i.name": parameters, gradients and buffers, loaded
checked and kept flat), ``observers.py`` (the one hook tools watch every layer through:
``model.observers`` and ``observing`` blocks).
"""
from .observers import observers_of, observing, tell  # noqa: F401 (observers_of, tell: for the step plan)
from .sequential import Sequential, mlp

__all__ = ["Sequential", "mlp", "observing"]
