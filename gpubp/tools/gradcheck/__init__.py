"""Gradient checking: backprop against central finite differences, in float64.

    numerical dL/dp_i = (L(p + eps e_i) - L(p - eps e_i)) / (2 eps)

``gradcheck`` checks every parameter of a model (a seeded sample of entries for
large ones), ``gradcheck_layer`` one layer (its parameters and dX), and
``gradcheck_loss`` a loss alone. Each works on a float64 copy (``dtype``) on the
caller's device (the caller's objects are never changed; inputs on another device
are refused), returns a per-array report,
and raises :class:`GradcheckError` carrying it when an entry is out of tolerance
(``|analytic - numeric| <= atol + rtol * |numeric|``).

A check that cannot fail is said so: an array whose checked gradients are all, backprop's
and the differences' alike, within ``atol`` of zero (a deep sigmoid net's first layers, a
softmax over one class) passes any backward as small (zero, its negative), so its
row reads ``ok?`` and a GpubpWarning names it and says which ``atol`` would test it. Inputs
with NaN/Inf, and a loss that is not finite where the check starts, are refused
(NumericalError) before any difference is taken.

An entry whose central difference disagrees with backprop may lie at a kink, not at a wrong
gradient: ``differences.py`` says how it is told apart; ``report.py`` holds the report.
"""
from __future__ import annotations

import copy
import warnings
from contextlib import contextmanager

import numpy as np

from ... import _checks
from ..._compat import is_cupy_array, to_host
from ...backend import as_float_dtype, backend_of, get_backend
from ...errors import (DeviceError, DTypeError, GpubpError, GpubpWarning, GradcheckError, InvalidValueError,
                       NumericalError, ShapeError)
from ...losses import SoftmaxCrossEntropy, get_loss
from ...network import Sequential
from ...network.checks import check_gradients_written, check_returned
from ...nn import Layer
from ...nn.base import set_up
from .differences import compare
from .report import GradcheckReport, Kink, Row, finish

__all__ = ["gradcheck", "gradcheck_layer", "gradcheck_loss", "GradcheckError", "GradcheckReport", "Kink", "Row"]


def gradcheck(model, loss, X, y, eps=1e-6, dtype="float64", atol=1e-6, rtol=1e-4, max_samples_per_param=64,
              seed=0, raise_on_fail=True):
    """Check dL/dp for every parameter p of a Sequential ``model`` under ``loss`` (instance or name) on (X, y).

    Parameters with more than ``max_samples_per_param`` entries are checked at that many
    indices drawn with ``seed``; the report's rows are named like ``model.parameters()``.
    Entries where the loss has a kink within ``eps`` (a ReLU input at 0, a max-pool tie) are
    not compared and not failures: ``report.kinks`` names them (see the module docstring).
    """
    raise_on_fail = _check_args("gradcheck", eps, atol, rtol, max_samples_per_param, seed, dtype, raise_on_fail)
    _checks.instance("gradcheck: model", model, Sequential, "for one layer use gradcheck_layer")
    if not model.parameters():
        raise InvalidValueError(f"gradcheck: {model!r:.80} has no parameters, so there is no gradient to check "
                                f"(a report of no rows would pass); check its layers' dX with gradcheck_layer")
    m, backend = _copy(model, model.backend, dtype)
    loss = copy.copy(get_loss(loss))
    X, y = _inputs("gradcheck", backend, model.backend, X, y, names=("X", "y"), labels=_labels(loss, y))
    start = _frozen(m.buffers())

    def f():  # every evaluation from the same buffers: the same Dropout mask, BatchNorm state
        m.load_buffers(start)
        return float(loss.forward(m.forward(X), y))
    with _named("gradcheck", {"X": X, "y": y}, f"the model and the {type(loss).__name__} loss"):
        _finite_start("gradcheck", f(), "the loss")
    m.zero_grad()
    m.backward(loss.backward())
    analytic = {k: backend.to_numpy(g) for k, g in m.gradients().items()}
    return finish(compare(f, m.parameters(), analytic, eps, atol, rtol, max_samples_per_param, seed),
                   raise_on_fail)


def gradcheck_layer(layer, X, eps=1e-6, dtype="float64", atol=1e-6, rtol=1e-4, max_samples_per_param=64,
                    seed=0, raise_on_fail=True):
    """Check a single layer's dX and parameter gradients for L = sum(w * layer(X)), w random
    (so dL/dY = w: every output's gradient path is exercised with a different weight)."""
    raise_on_fail = _check_args("gradcheck_layer", eps, atol, rtol, max_samples_per_param, seed, dtype,
                                raise_on_fail)
    set_up(_checks.instance("gradcheck_layer: layer", layer, Layer, "for a model use gradcheck"), "gradcheck_layer: ")
    lay, backend = _copy(layer, layer.backend, dtype)
    (X,) = _inputs("gradcheck_layer", backend, layer.backend, X, names=("X",))
    start = _frozen(lay.buffers)
    lay.load_buffers(start)
    with _named("gradcheck_layer", {"X": X}, repr(lay)):
        Y = lay.forward(X)  # a layer of the user's own: what it returns is checked as a model checks it
    check_returned(backend, lay, "forward", Y, lay.output_shape(X.shape))
    w = backend.asarray(np.random.default_rng(seed).normal(size=Y.shape))

    def f():  # every evaluation from the same buffers: the same Dropout mask, BatchNorm state
        lay.load_buffers(start)
        return float((lay.forward(X) * w).sum())
    _finite_start("gradcheck_layer", f(), f"the output of {lay!r}")
    lay.zero_grad()
    dX = lay.backward(w)
    check_returned(backend, lay, "backward", dX, X.shape)
    check_gradients_written(lay)
    analytic = {"dX": backend.to_numpy(dX)}
    analytic.update({k: backend.to_numpy(g) for k, g in lay.grads.items()})
    arrays = {"dX": X, **lay.params}
    return finish(compare(f, arrays, analytic, eps, atol, rtol, max_samples_per_param, seed), raise_on_fail)


def gradcheck_loss(loss, Y, T, eps=1e-6, dtype="float64", atol=1e-6, rtol=1e-4, max_samples_per_param=64,
                   seed=0, raise_on_fail=True):
    """Check a loss's dL/dY at predictions Y and targets T (float targets are cast, labels kept)."""
    raise_on_fail = _check_args("gradcheck_loss", eps, atol, rtol, max_samples_per_param, seed, dtype,
                                raise_on_fail)
    origin = backend_of(Y) if is_cupy_array(Y) else get_backend("cpu", dtype)  # Y may be a list
    backend = get_backend(origin.device, dtype)
    loss = copy.copy(get_loss(loss))
    Y, T = _inputs("gradcheck_loss", backend, origin, Y, T, names=("Y", "T"), labels=_labels(loss, T))

    def f():
        return float(loss.forward(Y, T))
    with _named("gradcheck_loss", {"Y": Y, "T": T}, type(loss).__name__):
        _finite_start("gradcheck_loss", f(), "the loss")
    analytic = {"dY": backend.to_numpy(loss.backward())}
    return finish(compare(f, {"dY": Y}, analytic, eps, atol, rtol, max_samples_per_param, seed),
                   raise_on_fail)


def _check_args(fn, eps, atol, rtol, max_samples, seed, dtype, raise_on_fail) -> bool:
    """One InvalidValueError naming the argument: a zero or negative eps divides by zero or
    differentiates backwards; tolerances are >= 0; at least one entry is sampled; the dtype
    is float32 or float64 (a DTypeError); ``raise_on_fail`` (returned) is True or False. An eps
    so small that rounding swamps the differences (below sqrt of the dtype's machine epsilon:
    float32's default 1e-6) warns: a correct backward would be reported wrong; so does one so large
    that the central difference's truncation error, about eps^2/6 of the gradient where the loss's
    derivatives are of order one, exceeds the tolerance (atol, rtol)."""
    eps = _checks.number(f"{fn}: eps", eps, low=0, low_open=True)
    _checks.number(f"{fn}: atol", atol, low=0)
    _checks.number(f"{fn}: rtol", rtol, low=0)
    _checks.integer(f"{fn}: max_samples_per_param", max_samples, minimum=1)
    _checks.integer(f"{fn}: seed", seed, minimum=0)
    try:
        name = as_float_dtype(dtype).name  # None refused too: it would keep the model's own dtype
    except DTypeError:
        raise DTypeError(f"{fn}: dtype must be 'float64' (the default) or 'float32', got {dtype!r}") from None
    if eps < np.sqrt(np.finfo(name).eps):
        warnings.warn(f"{fn}: eps={eps:g} is below the square root of {name}'s machine epsilon, so the loss's "
                      f"rounding divided by 2 eps swamps the differences and a correct backward can be reported "
                      f"wrong; use eps near {np.cbrt(np.finfo(name).eps):.0e}"
                      + (" with atol and rtol near 1e-2, or dtype='float64'" if name == "float32" else ""),
                      GpubpWarning, stacklevel=3)
    if eps ** 2 / 6 > max(atol, rtol):
        warnings.warn(f"{fn}: eps={eps:g} is so large that central differences are off by about eps^2/6 = "
                      f"{eps ** 2 / 6:.2g} of the gradient (times the loss's third derivative), beyond atol={atol:g} "
                      f"and rtol={rtol:g}, so a correct backward can be reported wrong (or at a kink); use eps near "
                      f"{np.cbrt(np.finfo(name).eps):.0e}", GpubpWarning, stacklevel=3)
    return _checks.flag(f"{fn}: raise_on_fail", raise_on_fail)


@contextmanager
def _named(fn, inputs, what):
    """What ``what`` refuses in the ``inputs`` (a shape, a dtype, a label) named as ``fn``'s inputs."""
    try:
        yield
    except (ShapeError, DTypeError, InvalidValueError) as exc:
        given = " and ".join(f"{k} of shape {tuple(a.shape)} ({a.dtype})" for k, a in inputs.items())
        raise type(exc)(f"{fn}: the input{'s' if len(inputs) > 1 else ''} {given} do{'' if len(inputs) > 1 else 'es'} "
                        f"not fit {what}: {exc}") from None


def _finite_start(fn, value, what):
    """Refuse a check that starts where ``what`` is NaN/Inf: every difference would be NaN."""
    if not np.isfinite(value):
        raise NumericalError(f"{fn}: {what} is {value} at the inputs given, so no finite difference "
                             f"can be taken; check the parameters and targets for NaN/Inf or values "
                             f"outside the loss's domain (with gpubp.detect_anomaly() to find the layer)")


def _frozen(buffers) -> dict:
    """Host copies of a model's or layer's buffers, to start each evaluation from."""
    return {k: np.array(to_host(v)) for k, v in buffers.items()}


def _copy(obj, backend, dtype):
    """A deep copy of a model or layer moved to ``dtype`` on its own device (backends are shared, not copied)."""
    target = get_backend(backend.device, dtype)
    try:
        twin = copy.deepcopy(obj, memo={id(backend): backend})
    except Exception as exc:  # a user's layer holding a lock, a file, a generator...
        raise InvalidValueError(f"gradcheck works on a copy, and {obj!r:.80} cannot be copied "
                                f"({type(exc).__name__}: {exc}); give its layers state that copy.deepcopy "
                                f"can copy") from exc
    return twin.to(target), target


def _labels(loss, T) -> bool:
    """Whether targets ``T`` are class labels, kept integers (fit's rule): 1-d, of softmax_cross_entropy."""
    return isinstance(get_loss(loss), SoftmaxCrossEntropy) and np.ndim(T) == 1


def _inputs(fn, backend, origin, *arrays, names, labels=False):
    """Arrays on the checked device, as fit takes them: numbers (integers too) as the checked float
    dtype, the last array's integer class labels (``labels``) unchanged; NaN/Inf refused."""
    out = []
    for k, (name, a) in enumerate(zip(names, arrays)):
        if is_cupy_array(a) and not origin.is_own(a):
            raise DeviceError(f"{fn}: an input is on cuda:{a.device.id} but the model is on {origin.device}")
        if isinstance(a, np.ndarray) and origin.name == "cupy":
            raise DeviceError(f"{fn}: a NumPy input for a CuPy model; move it with model.backend.asarray(x)")
        keep = labels and k == len(arrays) - 1
        try:
            a = backend.asarray(a)
            if a.dtype.kind in "iub" and not keep:  # uint8 pixels, integer targets: fit takes them as floats
                a = backend.asarray(a, backend.dtype)
        except GpubpError as exc:  # masked values, no numbers, not rectangular
            raise type(exc)(f"{fn}: the input {name}: {exc}") from None
        if a.size == 0:
            raise ShapeError(f"{fn}: the input {name} is empty (shape {tuple(a.shape)}): no difference can be taken")
        backend.check_finite(a, f"{fn}: the input {name}")
        out.append(a)
    return out
