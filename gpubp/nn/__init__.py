"""Layers for images (NCHW, PyTorch's argument names and defaults), each a screenful with
its forward and its backward (the delta rule) side by side, on NumPy and CuPy alike.

``gpubp/layers.py`` (the ``Layer`` base, ``Dense`` and the activations) will move here as
``nn/dense.py`` and ``nn/activations.py``; until then these layers build on it.
"""
from .conv import Conv2D
from .dropout import Dropout
from .norm import BatchNorm
from .pool import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from .shape import Flatten

__all__ = ["Conv2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "Flatten", "Dropout", "BatchNorm"]
