"""Dense: the affine layer of the delta rule.

For Y = X W + b, with ``delta = dY``::

    dW = X^T delta      db = sum over the batch of delta      dX = delta W^T
"""
from __future__ import annotations

import functools

from .. import _checks
from ..errors import InvalidValueError, ShapeError
from ..initializers import addressable, checked_weight, get_initializer
from .base import Layer
from .arrays import FAILURES, core_error, shape_error
from .windows import DEVICE_OPTION, torch_options

TORCH_NAMES = {"in_features": "n_in", "out_features": "n_out"}  # PyTorch's Linear's names for gpubp's


class Dense(Layer):
    """Affine layer Y = X W + b with W of shape (n_in, n_out) (no b with ``bias=False``).

    PyTorch's Linear's names are taken by keyword: in_features and out_features for n_in and
    n_out, device and dtype at their defaults (None) only (give ``backend=``)."""

    capturable = True  # its products go through backend.matmul, gpubp's GEMM in a capture
    backward_reads = ("X",)  # dW = X^T delta; Y is not read

    n_in, n_out, init, bias = (_checks.Fixed() for _ in range(4))  # the configuration: set once

    def __init__(self, n_in: int = None, n_out: int = None, init="xavier_uniform", seed=None, backend=None, bias=True,
                 **options):
        n_in, n_out = _torch_names(n_in, n_out, options)
        torch_options("Dense", options, {"device": DEVICE_OPTION, "dtype": DEVICE_OPTION})
        super().__init__(backend)
        for name, value in (("n_in", n_in), ("n_out", n_out)):
            _checks.integer(f"Dense {name}", value)
        if n_in < 1 or n_out < 1:
            raise ShapeError(f"Dense needs n_in >= 1 and n_out >= 1, got ({n_in}, {n_out})")
        addressable(f"Dense({n_in}, {n_out}) weight W", (n_in, n_out))
        if isinstance(init, bool):  # Dense(4, 3, False), as PyTorch's Linear(in, out, bias)
            raise InvalidValueError(f"Dense got {init} where its init goes (PyTorch's Linear takes bias there: give "
                                    f"bias={init} by name)")
        get_initializer(init)  # an unknown name is refused now, not at the first forward
        bias = _checks.flag("Dense bias", bias)
        self.n_in, self.n_out, self.init, self.bias = int(n_in), int(n_out), init, bias
        self.seed, self._params, self.X = _checks.seed("Dense seed", seed), None, None

    def __repr__(self):
        return f"Dense({self.n_in}, {self.n_out}{'' if self.bias else ', bias=False'})"

    def config(self):
        init = self.init if isinstance(self.init, str) else "xavier_uniform"
        return {"type": type(self).__name__, "n_in": self.n_in, "n_out": self.n_out, "init": init, "bias": self.bias}

    def parameter_shapes(self):
        return {"W": (self.n_in, self.n_out), **({"b": (self.n_out,)} if self.bias else {})}

    def drawn_parameters(self, rng, prefix=""):
        """W from the initialiser (checked), b = 0; nothing set (``Layer.drawn_arrays``)."""
        shape = self.parameter_shapes()["W"]
        W = checked_weight(get_initializer(self.init)(rng, *shape), shape, f"{self!r} parameter {prefix}W")
        with self.backend.activate():
            return {"W": self.backend.asarray(W), **({"b": self.backend.zeros((self.n_out,))} if self.bias else {})}

    def output_form(self, form):
        """(2, n_out) for rows of width n_in (``Layer.output_form``)."""
        ndim, width = form
        if ndim not in (None, 2):
            raise ShapeError(f"expects rows (N, {self.n_in})" + (" (a Flatten() before it makes images rows)"
                                                                  if ndim == 4 else ""))
        if width not in (None, self.n_in):
            raise ShapeError(f"expects inputs of width {self.n_in}")
        return 2, self.n_out

    def output_shape(self, shape):
        """(N, n_out) for inputs of shape (N, n_in), else a ShapeError."""
        try:
            if len(shape) != 2:
                raise ShapeError(f"Dense input: expected a 2-d array, got shape {tuple(shape)}")
            if shape[1] != self.n_in:
                raise ShapeError(f"Dense({self.n_in}, {self.n_out}) expects inputs of width {self.n_in}, "
                                 f"got shape {tuple(shape)}")
        except FAILURES as exc:
            raise shape_error(self, shape, exc) from None
        return shape[0], self.n_out

    def forward(self, X, out=None):
        """Y = X W + b, written into ``out`` when given (a buffer of shape (N, n_out), not X's memory:
        backward reads X for dW = X^T delta)."""
        self._check_forward(X, out)
        if out is not None and self.backend.xp.may_share_memory(X, out):
            raise InvalidValueError(f"{self!r}.forward: out shares memory with X, which backward reads for "
                                    f"dW = X^T delta (Y written there would make dW wrong); give out a buffer "
                                    f"of its own")
        return self._affine(X, out)

    def backward(self, dY, out=None):
        """dX = delta W^T, written into ``out`` when given; dY and out checked before any gradient is added."""
        self._check_backward(dY, out)
        return self._backprop(dY, out, input_grad=True)

    def backward_params(self, dY):
        """The parameter half of ``backward``: dW and db only (no dX, e.g. for the first layer)."""
        self._check_backward(dY)
        self._backprop(dY, None, input_grad=False)

    def bind(self, X, Y, dY, dX):
        return (functools.partial(self._affine, X, Y),
                functools.partial(self._backprop, dY, dX, input_grad=dX is not None))

    def _affine(self, X, out):
        try:
            Y = self.backend.matmul(X, self.params["W"], out=out)
            if self.bias:
                Y += self.params["b"]
        except FAILURES as exc:  # a bound plan's buffers that do not fit: said, not NumPy's words
            raise core_error(self, "forward", exc, X=X, W=self.params["W"], out=out) from None
        self.X = X
        return Y

    def _backprop(self, dY, out, input_grad):
        backend, X, grads = self.backend, self.X, self._grads
        try:
            if self._grads_zero:  # right after zero_grad: written, not added (no pass of zeros first)
                backend.matmul(X.T, dY, out=grads["W"])         # dW = X^T delta
                if self.bias:
                    backend.sum_rows(dY, out=grads["b"])         # db = 1^T delta
            else:
                grads["W"] += backend.matmul(X.T, dY)
                if self.bias:
                    grads["b"] += backend.sum_rows(dY)
        except FAILURES as exc:
            raise core_error(self, "backward", exc, X=X, dY=dY, W=self.params["W"]) from None
        self._grads_zero = self._grads_stale = False
        if input_grad:
            try:
                return backend.matmul(dY, self.params["W"].T, out=out)  # dX = delta W^T
            except FAILURES as exc:
                raise core_error(self, "backward", exc, dY=dY, W=self.params["W"], out=out) from None


def _torch_names(n_in, n_out, options) -> tuple:
    """(n_in, n_out), either given by PyTorch's name (``Dense(in_features=784, out_features=10)``, taken out
    of ``options``); both names of one size, or none, refused naming them."""
    sizes = {"n_in": n_in, "n_out": n_out}
    for torch_name, name in TORCH_NAMES.items():
        if torch_name in options:
            if sizes[name] is not None:
                raise InvalidValueError(f"Dense: {name} and {torch_name} (PyTorch's name) are one argument, "
                                        f"given twice")
            sizes[name] = options.pop(torch_name)
    missing = [name for name, size in sizes.items() if size is None]
    if missing:
        raise InvalidValueError(f"Dense needs {' and '.join(missing)}, the input and output widths: Dense(n_in, n_out) "
                                f"(PyTorch's in_features, out_features)")
    return sizes["n_in"], sizes["n_out"]
