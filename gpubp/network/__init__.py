"""Models: ``Sequential`` (layers run forward in order and backward in reverse) and ``mlp``.

Modules: ``sequential.py`` (Sequential: running the layers, train/eval mode, device, config;
``mlp``), ``state.py`` (its arrays by name "i.name": parameters, gradients and buffers, loaded
checked and kept flat), ``observers.py`` (the one hook tools watch every layer through:
``model.observers`` and ``observing`` blocks).
"""
# _ambient and _tell too: the step plan (gpubp/plan/) tells the same observers
from .observers import _ambient, _tell, observing  # noqa: F401
from .sequential import Sequential, mlp

__all__ = ["Sequential", "mlp", "observing"]
