"""gpubp: readable, exact backpropagation on NumPy (CPU) or CuPy (CUDA).

The core (backend, layers, losses, network, optim, train, checkpoint) never imports
``gpubp.tools``; this package front re-exports the tools a user reaches for.
"""
from ._version import __version__
from .backend import KERNELS, Backend, auto_choice, get_backend, use_backend
from .errors import (CheckpointError, DeviceError, DTypeError, GpubpError, GpubpWarning, GradcheckError,
                     InvalidValueError, NumericalError, OutOfMemoryError, ShapeError, StateError)
from .nn import (AvgPool2D, BatchNorm, Conv2D, Dense, Dropout, Flatten, GlobalAvgPool2D, Identity, LeakyReLU,
                 MaxPool2D, ReLU, Sigmoid, Tanh)
from .losses import MSE, BinaryCrossEntropy, SoftmaxCrossEntropy
from .network import Sequential, mlp
from .optim import SGD, Adam, AdamW, RMSprop, get_optimizer
from .train import evaluate, fit, predict
from . import checkpoint, datasets
from .tools.anomaly import detect_anomaly
from .tools.gradcheck import gradcheck, gradcheck_layer, gradcheck_loss
from .tools.parity import parity

__all__ = ["__version__", "Backend", "KERNELS", "get_backend", "use_backend", "auto_choice",
           "Dense", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "Identity", "Sequential", "mlp",
           "Conv2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "Flatten", "Dropout", "BatchNorm",
           "MSE", "BinaryCrossEntropy", "SoftmaxCrossEntropy",
           "SGD", "Adam", "AdamW", "RMSprop", "get_optimizer", "fit", "evaluate", "predict",
           "checkpoint", "datasets", "gradcheck", "gradcheck_layer", "gradcheck_loss", "GradcheckError",
           "GpubpError", "GpubpWarning", "ShapeError", "DTypeError", "DeviceError", "NumericalError",
           "OutOfMemoryError", "InvalidValueError", "StateError", "CheckpointError",
           "detect_anomaly", "parity"]
