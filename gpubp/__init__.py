"""gpubp: readable, exact backpropagation on NumPy (CPU) or CuPy (CUDA)."""
from .backend import KERNELS, Backend, auto_choice, get_backend, use_backend
from .anomaly import detect_anomaly
from .errors import (DeviceError, DTypeError, GpubpError, InvalidValueError, NumericalError, OutOfMemoryError,
                     ShapeError, StateError)
from .layers import Dense, Identity, LeakyReLU, ReLU, Sigmoid, Tanh
from .losses import MSE, BinaryCrossEntropy, SoftmaxCrossEntropy
from .network import Sequential, mlp
from .optim import SGD, Adam, AdamW, RMSprop, get_optimizer
from .train import evaluate, fit, predict
from .gradcheck import GradcheckError, gradcheck, gradcheck_layer, gradcheck_loss
from . import checkpoint, datasets
from .parity import parity

__version__ = "0.1.0"

__all__ = ["Backend", "KERNELS", "get_backend", "use_backend", "auto_choice",
           "Dense", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "Identity", "Sequential", "mlp",
           "MSE", "BinaryCrossEntropy", "SoftmaxCrossEntropy",
           "SGD", "Adam", "AdamW", "RMSprop", "get_optimizer", "fit", "evaluate", "predict",
           "checkpoint", "datasets", "gradcheck", "gradcheck_layer", "gradcheck_loss", "GradcheckError",
           "GpubpError", "ShapeError", "DTypeError", "DeviceError", "NumericalError", "OutOfMemoryError",
           "InvalidValueError", "StateError",
           "detect_anomaly", "parity"]
