"""Layers, each a screenful with its forward and its backward (the delta rule) side by side,
on NumPy and CuPy alike: the ``Layer`` base and the registry (base.py; drawing parameters in
parameter_draws.py, loading and keeping arrays in stored.py, moving devices in moves.py), the
checks of arrays crossing into a layer (arrays.py), ``Dense`` (dense.py), the activations
(activations.py), and for images (NCHW, PyTorch's argument names and defaults) ``Conv2D``
(conv.py), pooling (pool.py, both over the sliding windows of windows.py; global_pool.py), ``Flatten``
(shape.py), ``Dropout`` (dropout.py) and ``BatchNorm`` (norm.py; its statistics in
batch_statistics.py, its running estimates in running.py, its sums over the ranks' shares and idle
steps in norm_shares.py), and the share of a global batch that data-parallel training tells the last
two (share.py).
"""
from .activations import ACTIVATIONS, Activation, Identity, LeakyReLU, ReLU, Sigmoid, Tanh
from .base import LAYERS, Layer, layer_from_config
from .conv import Conv2D
from .dense import Dense
from .dropout import Dropout
from .norm import BatchNorm
from .global_pool import GlobalAvgPool2D
from .pool import AvgPool2D, MaxPool2D
from .shape import Flatten

__all__ = ["Layer", "LAYERS", "layer_from_config", "Dense", "Activation", "ACTIVATIONS", "Sigmoid", "Tanh", "ReLU",
           "LeakyReLU", "Identity", "Conv2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "Flatten", "Dropout",
           "BatchNorm"]
