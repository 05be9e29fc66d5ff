"""Activation layers: Y = f(X), and delta = dY * f'(.) in one fused registry kernel, so
stacking ``Dense`` and ``Sigmoid`` gives delta_l = (delta_{l+1} W_{l+1}^T) * f'(z_l).
"""
from __future__ import annotations

from .. import _checks
from ..backend.kernels import activations as kernels
from ..errors import InvalidValueError
from .base import ShapeKeeping
from .windows import torch_options


def not_inplace(layer, backend):
    """Refuse a bool given where a layer's backend goes: PyTorch's ``inplace`` goes there (ReLU(True))."""
    if isinstance(backend, bool):
        raise InvalidValueError(f"{layer} got {backend} where its backend goes (PyTorch's {layer} takes inplace "
                                f"there; gpubp's never writes its input: leave it out)")


class Activation(ShapeKeeping, abstract=True):
    """Elementwise f with a fused backward kernel ``delta = dY * f'(.)``.

    Subclasses hold their two registry kernels and say whether the backward needs
    the saved input ``X`` (ReLU family) or the saved output ``Y`` (sigmoid, tanh).
    """

    forward_kernel = backward_kernel = None
    saves = "Y"
    capturable = True  # registry kernels only

    TORCH_OPTIONS = {"inplace": ((False,), "its forward never writes its input (inplace=False)")}

    def __init__(self, backend=None, **options):
        not_inplace(type(self).__name__, backend)
        torch_options(type(self).__name__, options, self.TORCH_OPTIONS)
        super().__init__(backend)
        self.X = self.Y = None

    @property
    def backward_reads(self):
        """The saved one of X and Y: delta = dY * f'(.) reads no other."""
        return (self.saves,)

    def _extra(self):
        """The kernels' scalar arguments after the arrays (LeakyReLU's slope), read at each launch."""
        return ()

    def derivative_terms(self):
        """Elementwise size of the terms f' is computed from, the scale of its rounding (the parity
        tolerance reads it), or None where f' is exact given the saved input (the ReLU family)."""
        return None

    def forward(self, X, out=None):
        """Y = f(X), written into ``out`` when given (a buffer of X's shape, not X's memory)."""
        self._check_forward(X, out)
        self._own_buffer(out, "forward", X=X)
        Y = self.backend.apply(self.forward_kernel, X, *self._extra(), out=out)
        if self.saves == "X":
            self.X = X
        else:
            self.Y = Y
        return Y

    def backward(self, dY, out=None):
        saved = self.X if self.saves == "X" else self.Y
        self._check_dY(dY, saved.shape if saved is not None else ())
        self._check_out(out, saved.shape, "backward")
        self._own_buffer(out, "backward", dY=dY, **{self.saves: saved})
        return self.backend.apply(self.backward_kernel, dY, saved, *self._extra(), out=out)

    def bind(self, X, Y, dY, dX):
        if dX is None:
            return super().bind(X, Y, dY, dX)
        saved = X if self.saves == "X" else Y
        return (self.backend.bind(self.forward_kernel, X, *self._extra(), Y),
                self.backend.bind(self.backward_kernel, dY, saved, *self._extra(), dX))


class Sigmoid(Activation):
    """Y = 1 / (1 + exp(-X)); delta = dY * Y * (1 - Y)."""

    forward_kernel, backward_kernel = kernels.sigmoid, kernels.sigmoid_backward

    def derivative_terms(self):
        """Y (1 + Y), of f' = Y - Y^2 from the rounded Y: near Y = 1, f' is smaller than its rounding."""
        return self.Y * (1 + self.Y)


class Tanh(Activation):
    """Y = tanh(X); delta = dY * (1 - Y^2)."""

    forward_kernel, backward_kernel = kernels.tanh, kernels.tanh_backward

    def derivative_terms(self):
        """1 + Y^2, of f' = 1 - Y^2 from the rounded Y: near |Y| = 1, f' is smaller than its rounding."""
        return 1 + self.Y * self.Y


class ReLU(Activation):
    """Y = max(X, 0); delta = dY * [X > 0]."""

    forward_kernel, backward_kernel, saves = kernels.relu, kernels.relu_backward, "X"


class LeakyReLU(Activation):
    """Y = X if X > 0 else slope * X; delta = dY * (1 if X > 0 else slope)."""

    forward_kernel, backward_kernel, saves = kernels.leaky_relu, kernels.leaky_relu_backward, "X"

    def __init__(self, slope: float = 0.01, backend=None, **options):
        if "negative_slope" in options:  # PyTorch's name
            if slope != 0.01:
                raise InvalidValueError("LeakyReLU: slope and negative_slope (PyTorch's name) are one argument, "
                                        "given twice")
            slope = options.pop("negative_slope")
        super().__init__(backend, **options)
        self._slope_array = None
        self.slope = slope  # checked by the setter

    @property
    def slope(self) -> float:
        """The slope for X <= 0, in [0, 1]. Set between steps (a callback annealing it), the next
        step uses it, a step plan's too: its bound kernels read it from a 0-d array on the device."""
        return self._slope

    @slope.setter
    def slope(self, value) -> None:
        self._slope = _checks.number("LeakyReLU slope", value, low=0, high=1)
        if self._slope_array is not None:
            self._slope_array[...] = self._slope

    def __repr__(self):
        return f"LeakyReLU({self.slope})"

    def config(self):
        return {"type": type(self).__name__, "slope": self.slope}

    def _extra(self):
        """The slope as a 0-d array of the layer's dtype, rounded once (as the CUDA kernel takes it), the
        same in the eager and the bound step: a bound kernel reads the value set last."""
        bound = self._slope_array
        if bound is None or not self.backend.is_own(bound) or bound.dtype != self.backend.dtype:
            bound = self._slope_array = self.backend.asarray(self.slope)  # on the layer's device (it moved)
        return (bound,)


class Identity(ShapeKeeping):
    """Y = X; dX = dY (both passed through: ``out`` is accepted and left unused)."""

    capturable = True
    backward_reads = ()  # dX = dY; X only for its shape
    X = None  # the last input, for its shape: dY must have it

    def __init__(self, backend=None, **options):
        torch_options("Identity", options, {})  # PyTorch's Identity ignores any; gpubp's names them
        super().__init__(backend)

    def forward(self, X, out=None):
        self.backend.check_array(X, "Identity input")
        self.X = X
        return X

    def backward(self, dY, out=None):
        self._check_dY(dY, self.X.shape if self.X is not None else ())
        return dY


ACTIVATIONS = {"sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU, "leaky_relu": LeakyReLU,
               "identity": Identity}
